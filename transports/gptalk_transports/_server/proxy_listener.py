"""The recording proxy's listener on asyncio: :func:`serve_listener`'s rules
on asyncio's own server transports (see :func:`serve_on_asyncio`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial

import anyio
import sniffio
from anyio.abc import TaskStatus

from .._backends.asyncio import AsyncioStream
from .._backends.base import AsyncByteStream
from .driver import ServerStats, asyncio_accept_errors, serve_contained
from .proxy_accepted import Accepted

__all__ = ["serve_on_asyncio"]


async def serve_on_asyncio(
    handler: Callable[[AsyncByteStream], Awaitable[None]],
    close: Callable[[asyncio.Transport], Awaitable[None]],
    *,
    host: str,
    port: int,
    max_connections: int,
    stats: ServerStats,
    task_status: TaskStatus[str],
) -> None:
    """:func:`serve_listener`'s rules (cap, containment, close, accept errors)
    on asyncio's own server transports: the client's reads and writes then go
    through the asyncio backend's stream (a timer only for a read that waits),
    not an anyio stream under a cancel scope per read and per write.  Each
    connection is served by ``handler``, then closed by ``close``."""
    loop = asyncio.get_running_loop()
    listening = True
    # The listener's callbacks (connection_made, then spawn's start_soon)
    # run outside any task, in a copy of this context: without the library
    # named in it, anyio found no event loop there when the loop was not
    # anyio's own (asyncio.run), and no connection was served.
    sniffio.current_async_library_cvar.set("asyncio")
    # Made before the task group (it serves from inside it): an address in
    # use then reaches the caller as the OSError itself, not wrapped in the
    # group's ExceptionGroup (`record --listen` took it for an internal error).
    server = await loop.create_server(
        lambda: Accepted(loop, spawn), host, port, start_serving=False
    )
    with asyncio_accept_errors(stats):
        async with anyio.create_task_group() as group:

            def spawn(protocol: Accepted) -> None:
                transport = protocol.transport
                assert transport is not None
                if not listening:  # accepted as the server stopped
                    transport.abort()
                    return
                peer = transport.get_extra_info("peername")
                name = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"
                stream = AsyncioStream(
                    transport, protocol, name, transport.get_extra_info("socket")
                )
                group.start_soon(
                    partial(
                        serve_contained,
                        partial(handler, stream),
                        partial(close, transport),
                        lambda: name,
                        max_connections=max_connections,
                        stats=stats,
                    )
                )

            try:
                await server.start_serving()
                bound = server.sockets[0].getsockname()[1]
                shown = f"[{host}]" if ":" in host else host
                task_status.started(f"http://{shown}:{bound}")
                await anyio.sleep_forever()
            finally:
                listening = False
                server.close()
