"""The recording proxy's upstream-to-client tee under a client that does not
keep up: the upstream is held back (flow control), and a client that takes
nothing for SEND_TIMEOUT is cut off -- on asyncio (the tee at the protocol
level) and on trio (the pump)."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from pathlib import Path

import anyio
import anyio.abc
import pytest

from gptalk_transports._server import proxy as proxy_module

from .proxy_cases import proxy_in_front_of

MIB = 1024 * 1024


def _socket_max(name: str, default: int) -> int:
    """The most one TCP socket's buffer may grow to by itself (Linux's
    autotuning: the third figure of ``net.ipv4.tcp_rmem``/``tcp_wmem``,
    32 MiB for receiving on some hosts), or ``default`` elsewhere."""
    try:
        return int(Path("/proc/sys/net/ipv4", name).read_text().split()[2])
    except (OSError, ValueError, IndexError):
        return default


#: What the kernel alone may hold while the client reads nothing: the
#: upstream's send buffer, the proxy's receive and send buffers and the
#: client's receive buffer, each at its most.
SOCKETS_HOLD = 2 * (_socket_max("tcp_rmem", 6 * MIB) + _socket_max("tcp_wmem", 4 * MIB))
#: What the proxy itself may hold on top: a read or two in flight (generous).
PROXY_HOLDS = 4 * MIB
PIECE = 64 * 1024
#: The reply's size: more than the sockets and the proxy can hold, so that a
#: proxy that buffered the reply for a slow client would be seen doing it.
REPLY = SOCKETS_HOLD + PROXY_HOLDS + 8 * MIB
REPLY -= REPLY % PIECE


async def _stalled(sent: list[int]) -> None:
    """Until the upstream's count of bytes sent stops moving."""
    last = -1
    while sent[0] != last:
        last = sent[0]
        await anyio.sleep(0.3)


async def _run(client_reads: bool) -> tuple[int, int, bool]:
    sent = [0]
    upstream_cut = anyio.Event()

    async def upstream(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            while b"\r\n\r\n" not in (await stream.receive()):
                pass
            head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % REPLY
            await stream.send(head)
            piece = b"z" * PIECE
            try:
                for _ in range(REPLY // PIECE):
                    await stream.send(piece)
                    sent[0] += PIECE
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                upstream_cut.set()

    got = 0
    async with (
        proxy_in_front_of(upstream) as (_, address),
        await anyio.connect_tcp(*address) as client,
    ):
        await client.send(b"GET /x HTTP/1.1\r\nhost: h\r\n\r\n")
        await _stalled(sent)  # the client read nothing yet
        held_back = sent[0]
        if client_reads:
            with suppress(anyio.EndOfStream):
                while got < REPLY:
                    got += len(await client.receive(MIB))
        else:
            await upstream_cut.wait()
    return held_back, got, upstream_cut.is_set()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_client_that_does_not_read_holds_the_upstream_back(backend: str) -> None:
    """The upstream can send only what the sockets and the proxy's buffers
    hold while the client reads nothing; then the client gets every byte."""
    held_back, got, _ = anyio.run(_run, True, backend=backend)
    assert held_back < SOCKETS_HOLD + PROXY_HOLDS
    assert got >= REPLY  # the head, then the whole body


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_client_that_takes_nothing_for_send_timeout_is_cut_off(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past SEND_TIMEOUT with the client's buffer full, its connection ends
    (and the upstream's with it)."""
    monkeypatch.setattr(proxy_module, "SEND_TIMEOUT", 1.0)
    held_back, _, cut = anyio.run(_run, False, backend=backend)
    assert held_back < SOCKETS_HOLD + PROXY_HOLDS
    assert cut


def test_the_proxy_serves_under_asyncio_run() -> None:
    """Started from a plain ``asyncio.run`` (not ``anyio.run``), the asyncio
    listener serves its connections (its callbacks run outside any task)."""

    async def upstream(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            while b"\r\n\r\n" not in (await stream.receive()):
                pass
            await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    async def main() -> bytes:
        got = b""
        # (The safety net catches a proxy that serves nothing.)
        async with proxy_in_front_of(upstream, safety=30) as (_, (host, port)):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /x HTTP/1.1\r\nhost: h\r\n\r\n")
            while not got.endswith(b"ok"):
                got += await reader.read(65536)
            writer.close()
        return got

    assert asyncio.run(main()).endswith(b"\r\n\r\nok")
