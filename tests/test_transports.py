"""Clients against the reference server over loopback, on every backend."""

from __future__ import annotations

import anyio
import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports import AsyncClient, Client, GPTalk
from gptalk_transports._server.refserver import make_service, serve_in_thread

from . import clients

PROMPT = "Hello, how are you?"


@pytest.mark.parametrize("kind", clients.KINDS)
def test_full_chat(kind: str, no_leaks: None) -> None:
    with serve_in_thread() as url:
        outcome = clients.stream(kind, url, PROMPT)
    assert outcome.text == g.server.expected_reply(PROMPT)
    assert "".join(outcome.deltas) == outcome.text
    assert len(outcome.deltas) == len(g.server.default_reply(PROMPT))
    assert outcome.retries == 0
    assert outcome.connections == 1  # login, text and stream on one connection


@pytest.mark.parametrize("kind", clients.KINDS)
def test_messages_and_system_prompt(kind: str, reference_url: str) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    outcome = clients.stream(kind, reference_url, messages)
    assert outcome.text == g.server.expected_reply("System: Be brief.\nUser: Hi\nAssistant:")


@pytest.mark.parametrize("kind", clients.KINDS)
def test_seven_chats_relogin_after_the_fifth_and_reuse_one_connection(
    kind: str, no_leaks: None
) -> None:
    service = make_service()
    credentials = g.Credentials()
    with serve_in_thread(service) as url:
        prompts = [f"chat {n}" for n in range(7)]
        if kind == "blocking":
            with Client(url, credentials=credentials) as client:
                replies = [client.chat(p) for p in prompts]
                opened = client.connections_opened
        else:

            async def main(backend: str) -> tuple[list[str], int]:
                async with AsyncClient(url, backend=backend, credentials=credentials) as client:
                    return [await client.chat(p) for p in prompts], client.connections_opened

            replies, opened = clients.run_async(kind, main)
    assert replies == [g.server.expected_reply(p) for p in prompts]
    assert service.counts["login"] == 2
    assert credentials.logins == 2
    assert opened == 1


@pytest.mark.parametrize("kind", clients.KINDS)
def test_twenty_concurrent_chats_make_exactly_four_logins(kind: str, no_leaks: None) -> None:
    service = make_service()
    with serve_in_thread(service) as url:
        prompts = [f"concurrent {n}" for n in range(20)]
        replies, _ = clients.many(kind, url, prompts)
    assert replies == [g.server.expected_reply(p) for p in prompts]
    assert service.counts["login"] == 4
    assert service.counts["text"] == 20


@pytest.mark.parametrize("kind", clients.KINDS)
def test_fifty_concurrent_chats_over_one_client(kind: str, no_leaks: None) -> None:
    service = make_service()
    credentials = g.Credentials()
    with serve_in_thread(service) as url:
        prompts = [f"fifty {n}" for n in range(50)]
        replies, opened = clients.many(kind, url, prompts, credentials=credentials)
    assert replies == [g.server.expected_reply(p) for p in prompts]
    assert service.counts["login"] == 10
    assert credentials.logins == 10
    assert opened <= 50


@pytest.mark.parametrize("kind", list(clients.ASYNC_KINDS))
def test_cancellation_mid_stream_leaves_no_socket_or_task(kind: str, no_leaks: None) -> None:
    # The first stream waits a minute between events: the cancellation after
    # its first delta lands mid-stream whatever the machine's speed.
    service = make_service(faults=["delay=60#1"])
    credentials = g.Credentials()
    with serve_in_thread(service) as url:

        async def main(backend: str) -> list[str]:
            seen: list[str] = []
            async with AsyncClient(url, backend=backend, credentials=credentials) as client:
                with anyio.CancelScope() as scope:
                    async with client.stream(PROMPT) as chat:
                        async for delta in chat:
                            seen.append(delta)
                            scope.cancel()  # delivered while the next event is awaited
                assert scope.cancelled_caught
                # The client still works after a cancelled chat.
                assert await client.chat("after") == g.server.expected_reply("after")
            return seen

        seen = clients.run_async(kind, main)
    assert seen == g.server.default_reply(PROMPT)[:1]
    assert credentials.uses <= credentials.max_uses


def test_blocking_stream_closed_early_leaves_no_socket(no_leaks: None) -> None:
    with serve_in_thread() as url, Client(url) as client:
        with client.stream(PROMPT) as chat:
            first = next(chat)
        assert first == g.server.default_reply(PROMPT)[0]
        assert client.chat("after") == g.server.expected_reply("after")


def test_g4f_create_async_generator(no_leaks: None) -> None:
    service = make_service()
    with serve_in_thread(service) as url:

        async def main() -> list[str]:
            messages = [{"role": "user", "content": PROMPT}]
            generator = GPTalk.create_async_generator(
                "gpt-3.5-turbo", messages, base_url=url, temperature=0.5
            )
            return [piece async for piece in generator]

        pieces = anyio.run(main)
    assert "".join(pieces) == g.server.expected_reply(PROMPT)
    assert GPTalk.supports_gpt_35_turbo
    assert GPTalk.url == "https://gptalk.net"
    assert GPTalk.working is False


def test_g4f_concurrent_generators_share_credentials_without_overuse(no_leaks: None) -> None:
    service = make_service()
    with serve_in_thread(service) as url:

        async def one(index: int, results: list[str]) -> None:
            messages = [{"role": "user", "content": f"g4f {index}"}]
            pieces = [p async for p in GPTalk.create_async_generator("", messages, base_url=url)]
            results[index] = "".join(pieces)

        async def main() -> tuple[list[str], g.Credentials]:
            results = [""] * 12
            async with anyio.create_task_group() as group:
                for index in range(12):
                    group.start_soon(one, index, results)
            return results, GPTalk.credentials_for(url)

        results, credentials = anyio.run(main)
    assert results == [g.server.expected_reply(f"g4f {i}") for i in range(12)]
    # Never more than 5 uses of a token: the service refused nothing.
    assert service.counts["text"] == 12
    assert credentials.uses <= 5


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(g.LocalProtocolError, match="unknown backend"):
        AsyncClient("http://127.0.0.1:1", backend="curio")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "gpt\r\nx-evil: 1"}, "model"),
        ({"user_agent": "ua\nx"}, "user_agent"),
        ({"headers": {"x-extra": "a\r\nb"}}, "header"),
        ({"proxy": "http://us\ner:pw@127.0.0.1:3128"}, "proxy"),
    ],
)
def test_header_injection_is_refused_before_anything_is_sent(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(g.LocalProtocolError, match=message):
        Client("http://127.0.0.1:1", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(g.LocalProtocolError, match=message):
        AsyncClient("http://127.0.0.1:1", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user_agent": "ua\x01x"}, "user_agent"),
        ({"user_agent": "ua\x7f"}, "user_agent"),
        ({"headers": {"x-extra": "\u2713"}}, "header"),
        ({"headers": {"x-extra": "tab\tis fine", "x-nul": "a\x00b"}}, "header"),
    ],
)
def test_header_values_refuse_every_control_character(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(g.LocalProtocolError, match=message):
        Client("http://127.0.0.1:1", **kwargs)  # type: ignore[arg-type]


def test_a_model_name_only_goes_in_the_body_so_unicode_is_fine(reference_url: str) -> None:
    with Client(reference_url, model="\u6a21\u578b-\u00e9") as client:
        assert client.chat("hi") == g.server.expected_reply("hi")
    with pytest.raises(g.LocalProtocolError, match="model"):
        Client(reference_url, model="a\nb")
