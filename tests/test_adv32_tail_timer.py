"""The recording proxy's cut-off timer, once the tail it guards went out.

When a client's connection ends with bytes still buffered for it, the proxy
closes its transport (the tail goes out first) and arms a timer that aborts
it after SEND_TIMEOUT.  A client that took its tail in time left the timer
armed on a transport asyncio had finished with: ``abort`` then raised
``AttributeError`` inside the loop, and asyncio printed its traceback to the
CLI user's terminal (``gptalk record --listen``), a minute after any slowly
read reply.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from gptalk_transports._server import proxy

# More than the transport and the sockets' buffers take at once.
TAIL = 8 * 1024 * 1024


class _Kept(asyncio.Protocol):
    def __init__(self, made: asyncio.Future[asyncio.Transport], lost: asyncio.Event) -> None:
        self.made, self.lost = made, lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.made.set_result(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()


async def _tail_then(read_it: bool) -> int:
    """A connection closed by the proxy's rule with TAIL bytes written to
    it, the client reading them all (``read_it``) or none; then the one
    timer it armed is run (as the loop would, SEND_TIMEOUT later).  The
    bytes the client got, until the connection's end."""
    loop = asyncio.get_running_loop()
    made: asyncio.Future[asyncio.Transport] = loop.create_future()
    lost = asyncio.Event()
    server = await loop.create_server(lambda: _Kept(made, lost), "127.0.0.1", 0)
    armed: list[Callable[[], object]] = []

    def call_later(delay: float, callback: Callable[..., object], *args: Any) -> None:
        assert delay == proxy.SEND_TIMEOUT
        armed.append(lambda: callback(*args))

    port = server.sockets[0].getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    client.setblocking(False)
    got = 0
    try:
        transport = await made
        transport.write(b"x" * TAIL)
        loop.call_later = call_later  # type: ignore[method-assign,assignment]
        try:
            await proxy._close_after_its_tail(transport)
        finally:
            del loop.call_later
        assert transport.get_write_buffer_size() > 0  # a tail is left, and a timer
        if read_it:
            while data := await loop.sock_recv(client, 1 << 20):
                got += len(data)
            await lost.wait()  # asyncio is done with the transport
        assert len(armed) == 1
        armed[0]()  # raised AttributeError once the tail went out
        if not read_it:
            await lost.wait()  # cut off
            with suppress(ConnectionResetError):
                while data := await loop.sock_recv(client, 1 << 20):
                    got += len(data)
    finally:
        client.close()
        server.close()
    return got


def test_the_timer_after_a_tail_that_went_out_does_nothing() -> None:
    assert asyncio.run(_tail_then(read_it=True)) == TAIL


def test_the_timer_cuts_off_a_client_that_did_not_take_its_tail() -> None:
    assert asyncio.run(_tail_then(read_it=False)) < TAIL
