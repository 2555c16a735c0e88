"""The secrets a replay is given never reach a mismatch's text: not the
client-side replayer's, not the episode replayer's, not the replay server's
409 and its kept mismatches; not even the half of one that a cut leaves."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_proto._errors import EXCERPT_LIMIT, LINE_LIMIT
from gptalk_transports._episodes import EpisodeReplayer, Matching

from .replay_cases import CASSETTES, cassette_at

SECRET = "Sesame-secret-42"
#: What a message may hold of it: not even its first half.
HALF = SECRET[: len(SECRET) // 2]

PLAIN = cassette_at(CASSETTES / "plain-chat.json")
#: The plain chat from its text request on (its login's binding aside).
TEXT = replace(PLAIN, interactions=PLAIN.interactions[1:])


def text_request(
    content: str, *, target: str | None = None, extra: dict[str, object] | None = None
) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """The recorded text request with ``content`` as its prompt (``target``
    and ``extra`` body fields changed too, if given)."""
    recorded = TEXT.interactions[0].request
    body = recorded.json()
    assert isinstance(body, dict)
    body = {**body, "content": content, **(extra or {})}
    raw = json.dumps(body, ensure_ascii=False).encode()
    headers = [(n, v) for n, v in recorded.headers if n.lower() != "content-length"]
    return recorded.method, target or recorded.target, headers, raw


def mismatch_text(replayer: g.cassette.Replayer, *request: object) -> str:
    with pytest.raises(g.cassette.CassetteMismatch) as info:
        replayer.match(*request)  # type: ignore[arg-type]
    text = str(info.value) + "\n" + "\n".join(info.value.differences)
    assert HALF not in text, text
    return text


def test_a_secret_sent_in_a_prompt_is_its_placeholder() -> None:
    text = mismatch_text(
        g.cassette.Replayer(TEXT, secrets=[SECRET]), *text_request(f"Open {SECRET} please!!")
    )
    assert "body.content: recorded '\"Hello, how are you?\"'" in text
    assert "sent '\"Open <secret-1> please!!\"'" in text
    # Without the secrets, the message quotes what was sent, as before.
    with pytest.raises(g.cassette.CassetteMismatch) as info:
        g.cassette.Replayer(TEXT).match(*text_request(f"Open {SECRET} please!!"))
    assert SECRET in str(info.value)


@pytest.mark.parametrize(
    "where",
    ["path", "query", "header", "key", "json-escaped", "bytes", "second-secret"],
)
def test_every_quoted_value_and_name_is_scrubbed(where: str) -> None:
    secrets = ["another-secret", SECRET]
    method, target, headers, body = text_request("Hello, how are you?")
    secret = SECRET
    if where == "path":
        target = f"/api/{SECRET}/chat"
    elif where == "query":
        target += f"?key={SECRET.replace('-', '%2D')}"
    elif where == "header":
        headers = [*headers, ("x-key", f"Bearer {SECRET}")]
    elif where == "key":
        body = json.dumps({**json.loads(body), SECRET: 1}).encode()
    elif where == "json-escaped":
        # A secret JSON writes with escapes, sent as \\u escapes.
        secret = 'Sésame "secret" 42'
        secrets.append(secret)
        body = json.dumps({**json.loads(body), "content": secret}).encode()
    elif where == "bytes":
        body = f"content={SECRET}".encode()
    elif where == "second-secret":
        secret = "another-secret"
        body = json.dumps({**json.loads(body), "content": secret}).encode()
    replayer = g.cassette.Replayer(TEXT, secrets=secrets)
    text = mismatch_text(replayer, method, target, headers, body)
    assert secret not in text
    assert secret[: len(secret) // 2] not in text
    assert json.dumps(secret)[1:-1] not in text
    number = secrets.index(secret) + 1
    assert f"<secret-{number}>" in text, text


@pytest.mark.parametrize("cut", ["excerpt", "line"])
def test_a_secret_cut_in_half_by_a_limit_shows_no_half(cut: str) -> None:
    if cut == "excerpt":
        # A value quoted to EXCERPT_LIMIT characters, the secret across the cut.
        request = text_request("x" * (EXCERPT_LIMIT - len(HALF) - 1) + SECRET + "y" * 50)
    else:
        # A JSON key (names are not cut on their own) across the line's cut.
        key = "k" * (LINE_LIMIT - len(HALF) - len("body.")) + SECRET + "z" * 50
        request = text_request("Hello, how are you?", extra={key: 1})
    text = mismatch_text(g.cassette.Replayer(TEXT, secrets=[SECRET]), *request)
    assert "characters)" in text  # it was cut


def test_the_episode_replayer_is_given_them_with_its_matching() -> None:
    replayer = EpisodeReplayer(PLAIN, Matching.of(secrets=[SECRET]))
    method, _, headers, body = text_request(f"Open {SECRET}")
    text = mismatch_text(replayer, method, f"/{SECRET}", headers, body)
    assert "<secret-1>" in text


def test_the_replay_server_never_sends_or_keeps_them() -> None:
    server = g.cassette.ReplayServer([PLAIN], speed=0, secrets=[SECRET])
    conn = server.connection()
    login = PLAIN.interactions[0].request
    data = (
        f"POST /api/{SECRET}/login HTTP/1.1\r\nhost: x\r\nx-key: {SECRET}\r\n"
        f"content-length: {len(login.body)}\r\n\r\n"
    ).encode() + login.body
    actions = conn.receive_data(data)
    sent = b"".join(a.data for a in actions if isinstance(a, g.cassette.ReplayWrite))
    assert b" 409 " in sent.split(b"\r\n", 1)[0]
    assert HALF.encode() not in sent
    assert b"<secret-1>" in sent
    kept = "\n".join(server.mismatches())
    assert HALF not in kept
    assert "<secret-1>" in kept
