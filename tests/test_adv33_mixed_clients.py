"""The replay server under hundreds of clients at once, on asyncio and trio:
whole chats by our client among hostile ones (garbage, a reset right after a
login, a half-close, a pipelined flood, a client that never reads a long
stream).  Every chat plays right; nothing is an internal error."""

from __future__ import annotations

import logging
import socket
import struct
from urllib.parse import urlsplit

import anyio
import pytest
from anyio.abc import SocketAttribute

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports import AsyncClient, load_cassette
from gptalk_transports._config import Timeout
from gptalk_transports._server.driver import LOGGER_NAME, ServerStats
from gptalk_transports._server.replay import serve_replay
from gptalk_transports._session import REPLAY_RETRY, recorded_clock, text_steps

from .test_replay_server import PLAIN, expected
from .test_replay_server_core import recorded_token, token_of, wire

# Our clients and the hostile ones play the same cassette: a client's login
# starts a session in the first cassette whose first step it matches.
LONG = load_cassette(PLAIN.parent / "long-reply.json")

#: Clients of each kind: our client's whole chats, and each hostile kind.
EACH = 40


async def _read(stream: anyio.abc.ByteStream, size: int) -> bytes:
    got = b""
    while len(got) < size:
        got += await stream.receive()
    return got


async def _hostile(host: str, port: int, kind: int, chats_done: anyio.Event) -> None:
    login, text, reply = LONG.interactions
    try:
        stream = await anyio.connect_tcp(host, port)
    except OSError:
        return
    async with stream:
        try:
            if kind == 0:
                await stream.send(b"\x16\x03\x01\x00\xff\x1b[2J garbage\r\n\r\n")
            elif kind == 1:
                await stream.send(wire(login))
                # A reset, not a close: the server's write meets ECONNRESET.
                raw = stream.extra(SocketAttribute.raw_socket)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            elif kind == 2:
                await stream.send(wire(login))
                await stream.send_eof()
            elif kind == 3:
                await stream.send(wire(reply) * (g.cassette.MAX_PIPELINED_ANSWERS + 4))
            else:
                # The long reply asked for and never read while the chats
                # play: the server's writes wait on this client alone.
                await stream.send(wire(login))
                token = token_of(await _read(stream, len(login.response.wire)))
                await stream.send(wire(text, {recorded_token(login): token}))
                token = token_of(await _read(stream, len(text.response.wire)))
                await stream.send(wire(reply, {recorded_token(text): token}))
                await chats_done.wait()
                return
            while await stream.receive():
                pass
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            pass


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_hostile_clients_among_chats(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger=LOGGER_NAME)
    steps = text_steps(LONG)
    stats = ServerStats()
    server = g.cassette.ReplayServer([LONG], speed=0)
    texts: list[list[str]] = []
    chats_done = anyio.Event()

    async def chat(url: str) -> None:
        async with AsyncClient(
            url,
            backend=backend,
            retry=REPLAY_RETRY,
            timeout=Timeout(30, 30, 120),
            clock=recorded_clock(LONG),
            trust_env=False,
        ) as client:
            texts.append([await client.chat(prompt, model=model) for _, prompt, model in steps])
        if len(texts) == EACH:
            chats_done.set()

    async def main() -> None:
        async with anyio.create_task_group() as server_group:
            url = await server_group.start(
                lambda task_status: serve_replay(server, stats=stats, task_status=task_status)
            )
            parts = urlsplit(url)
            with anyio.fail_after(120):  # a safety net: the clients end on their own
                async with anyio.create_task_group() as clients:
                    for n in range(EACH * 6):
                        if n % 6 == 5:
                            clients.start_soon(chat, url)
                        else:
                            clients.start_soon(
                                _hostile, parts.hostname or "", parts.port or 0, n % 6, chats_done
                            )
            server_group.cancel_scope.cancel()

    anyio.run(main, backend=backend)
    assert texts == [anyio.run(expected, LONG)] * EACH
    assert stats.internal_errors == 0
    assert stats.accepted >= EACH * 6
    assert [r for r in caplog.records if r.name == LOGGER_NAME] == []
