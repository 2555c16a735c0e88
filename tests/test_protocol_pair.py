"""The client machine against the server machine, in memory (no sockets)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_proto.testing import MemoryPair, random_splitter, run_chat

NOW = 1_700_000_000.0
PROMPT = "Hello, how are you?"


def deltas(events: list[g.ChatEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, g.TextDelta))


@pytest.mark.parametrize("split", [None, 1, 2, 3], ids=["whole", "seed1", "seed2", "seed3"])
def test_full_chat(
    split: int | None, service: g.server.Service, make_chat: Callable[..., g.Chat]
) -> None:
    splitter = None if split is None else random_splitter(split, max_piece=5)
    events = run_chat(make_chat(PROMPT), service, now=NOW, splitter=splitter)
    assert isinstance(events[0], g.LoggedIn)
    assert events[-1] == g.ChatDone(g.server.expected_reply(PROMPT))
    assert deltas(events) == g.server.expected_reply(PROMPT)
    assert service.counts["login"] == 1


def test_one_connection_serves_login_text_and_stream(
    service: g.server.Service, make_chat: Callable[..., g.Chat]
) -> None:
    pair = MemoryPair(make_chat(), service, now=NOW)
    events = list(pair.events())
    assert not any(isinstance(e, g.ReconnectNeeded) for e in events)
    assert pair.connections == 1
    assert pair.client.requests_on_connection == 3
    assert pair.client.reusable


def test_seven_chats_relogin_after_the_fifth(
    service: g.server.Service, credentials: g.Credentials, make_chat: Callable[..., g.Chat]
) -> None:
    logins = []
    for number in range(7):
        events = run_chat(make_chat(f"chat {number}"), service, now=NOW)
        assert events[-1] == g.ChatDone(g.server.expected_reply(f"chat {number}"))
        logins.append(isinstance(events[0], g.LoggedIn))
    assert logins == [True, False, False, False, False, True, False]
    assert service.counts["login"] == 2
    assert credentials.logins == 2
    assert credentials.uses == 2


def test_expired_token_relogins_before_use(
    service: g.server.Service, make_chat: Callable[..., g.Chat]
) -> None:
    run_chat(make_chat(), service, now=NOW)
    # Past expiry less the margin: the client logs in again on its own.
    later = NOW + service.token_ttl - g.DEFAULT_EXPIRY_MARGIN
    events = run_chat(make_chat(), service, now=later)
    assert isinstance(events[0], g.LoggedIn)
    assert service.counts["login"] == 2


def test_server_side_expiry_raises_auth_expired_and_next_chat_relogins(
    service: g.server.Service, make_chat: Callable[..., g.Chat]
) -> None:
    creds = g.Credentials(margin=0)
    run_chat(make_chat(credentials=creds), service, now=NOW)
    # The client's idea of the expiry is later than the service's (clock skew).
    creds.expires_at += 600
    with pytest.raises(g.AuthExpired):
        run_chat(make_chat(credentials=creds), service, now=NOW + service.token_ttl + 1)
    assert creds.token is None
    events = run_chat(make_chat(credentials=creds), service, now=NOW + service.token_ttl + 2)
    assert isinstance(events[0], g.LoggedIn)


@pytest.mark.parametrize(
    ("which", "error"),
    [
        ("quota", g.QuotaExhausted),
        ("expired", g.AuthExpired),
        ("invalid", g.AuthInvalid),
        ("bad-request", g.ServiceError),
        ("internal", g.ServiceError),
    ],
)
@pytest.mark.parametrize("endpoint", ["login", "text", "stream"])
def test_every_error_envelope_is_typed(
    which: str, error: type[Exception], endpoint: str, make_chat: Callable[..., g.Chat]
) -> None:
    service = g.server.Service(
        entropy=random.Random(1).randbytes, faults=[f"envelope={which}@{endpoint}"]
    )
    creds = g.Credentials()
    with pytest.raises(error) as info:
        run_chat(make_chat(credentials=creds), service, now=NOW)
    assert type(info.value) is error
    assert isinstance(info.value.code, int)  # type: ignore[attr-defined]
    if error in (g.QuotaExhausted, g.AuthExpired, g.AuthInvalid) and endpoint == "text":
        assert creds.token is None  # the next chat logs in again


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 502, 503, 504])
@pytest.mark.parametrize("endpoint", ["login", "text", "stream"])
def test_every_status_is_typed(
    status: int, endpoint: str, make_chat: Callable[..., g.Chat]
) -> None:
    service = g.server.Service(
        entropy=random.Random(1).randbytes, faults=[f"status={status}@{endpoint}"]
    )
    with pytest.raises(g.HTTPStatusError) as info:
        run_chat(make_chat(), service, now=NOW)
    assert info.value.status == status
    assert info.value.url.endswith(
        f"/{ {'login': 'login', 'text': 'text', 'stream': 'stream'}[endpoint] }"
    )
    assert "token=" not in str(info.value)


def test_status_then_healthy(make_chat: Callable[..., g.Chat]) -> None:
    service = g.server.Service(entropy=random.Random(1).randbytes, faults=["status=503@text#1"])
    creds = g.Credentials()
    with pytest.raises(g.HTTPStatusError):
        run_chat(make_chat(credentials=creds), service, now=NOW)
    events = run_chat(make_chat(credentials=creds), service, now=NOW)
    assert events[-1] == g.ChatDone(g.server.expected_reply(PROMPT))


@pytest.mark.parametrize("cut", [0, 1, 5])
def test_stream_cut_mid_event(cut: int, make_chat: Callable[..., g.Chat]) -> None:
    service = g.server.Service(entropy=random.Random(1).randbytes, faults=[f"cut={cut}"])
    seen: list[g.ChatEvent] = []
    with pytest.raises(g.StreamInterrupted) as info:
        seen.extend(MemoryPair(make_chat(), service, now=NOW).events())
    pieces = g.server.default_reply(PROMPT)
    assert info.value.text == "".join(pieces[:cut])
    assert deltas(seen) == info.value.text


def test_rewrite_is_an_event_not_garbage(make_chat: Callable[..., g.Chat]) -> None:
    service = g.server.Service(entropy=random.Random(1).randbytes, faults=["rewrite=4"])
    events = run_chat(make_chat(), service, now=NOW)
    rewrites = [e for e in events if isinstance(e, g.TextRewritten)]
    pieces = g.server.default_reply(PROMPT)
    assert rewrites == [g.TextRewritten("(edited) " + "".join(pieces[:4]), "".join(pieces[:3]))]
    assert events[-1] == g.ChatDone("(edited) " + g.server.expected_reply(PROMPT))


@pytest.mark.parametrize("fault", ["malformed=3", "nocontent=2"])
def test_bad_event_is_a_remote_error_quoting_it(
    fault: str, make_chat: Callable[..., g.Chat]
) -> None:
    service = g.server.Service(entropy=random.Random(1).randbytes, faults=[fault])
    with pytest.raises(g.RemoteProtocolError, match=r"stream event, got '\{") as info:
        run_chat(make_chat(), service, now=NOW)
    assert not isinstance(info.value, g.StreamInterrupted)
    assert len(str(info.value)) < 300  # a bounded excerpt


@pytest.mark.parametrize("newline", ["lf", "crlf", "cr"])
@pytest.mark.parametrize("split", [None, 7])
def test_line_ends_and_keepalives(
    newline: str, split: int | None, make_chat: Callable[..., g.Chat]
) -> None:
    service = g.server.Service(
        entropy=random.Random(1).randbytes, faults=[f"newline={newline}", "keepalive=2"]
    )
    splitter = None if split is None else random_splitter(split, max_piece=3)
    events = run_chat(make_chat(), service, now=NOW, splitter=splitter)
    assert events[-1] == g.ChatDone(g.server.expected_reply(PROMPT))


def test_server_closes_before_answering(make_chat: Callable[..., g.Chat]) -> None:
    service = g.server.Service(entropy=random.Random(1).randbytes, faults=["close@text"])
    with pytest.raises(g.RemoteProtocolError, match="expected a response to the text request"):
        run_chat(make_chat(), service, now=NOW)


def test_coalesced_stream(make_chat: Callable[..., g.Chat]) -> None:
    service = g.server.Service(entropy=random.Random(1).randbytes, faults=["coalesce"])
    assert run_chat(make_chat(), service, now=NOW)[-1] == g.ChatDone(
        g.server.expected_reply(PROMPT)
    )


def test_drip_never_ends(make_chat: Callable[..., g.Chat]) -> None:
    service = g.server.Service(entropy=random.Random(1).randbytes, faults=["drip=0.1"])
    with pytest.raises(TimeoutError):
        run_chat(make_chat(), service, now=NOW, max_pause=5.0)


def test_several_messages_become_one_prompt(
    service: g.server.Service, make_chat: Callable[..., g.Chat]
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    prompt = "System: Be brief.\nUser: Hi\nAssistant:"
    assert g.format_prompt(messages) == prompt
    events = run_chat(make_chat(messages), service, now=NOW)
    assert events[-1] == g.ChatDone(g.server.expected_reply(prompt))


def test_text_request_carries_exactly_the_original_fields(make_chat: Callable[..., g.Chat]) -> None:
    creds = g.Credentials()
    creds.store("a" * 32, NOW + 3600)
    chat = make_chat(credentials=creds, model="gpt-3.5-turbo")
    request = chat.next_request(NOW)
    assert request.kind == "text"
    body = json.loads(request.body)
    assert list(body) == [
        "content", "accept", "from", "model", "is_mobile", "user_agent",
        "is_open_ctx", "prompt", "roid", "temperature", "ctx_msg_count", "created_at",
    ]  # fmt: skip
    assert body["created_at"] == int(NOW)
    headers = dict(request.headers)
    assert headers["authorization"] == "Bearer " + "a" * 32
    assert headers["x-auth-appid"] == "2229"
    assert headers["x-auth-timestamp"] == str(int(NOW))
    assert "a" * 32 not in repr(request)
