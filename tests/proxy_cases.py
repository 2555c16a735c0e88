"""What the recording proxy's tests share: an upstream on loopback and the
proxy recording in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import anyio
import anyio.abc

from gptalk_transports._server.proxy import ProxyRun, record_through_proxy

Upstream = Callable[[anyio.abc.ByteStream], Awaitable[None]]


@asynccontextmanager
async def proxy_in_front_of(
    upstream: Upstream, *, safety: float = 60
) -> AsyncIterator[tuple[ProxyRun, tuple[str, int]]]:
    """Serve ``upstream`` (called once per connection) on loopback, and
    record through a proxy in front of it: yields the proxy's run (its
    ``cassette`` is set once the block is left) and its (host, port).

    ``safety``: seconds after which a stuck test fails.  It is a safety
    net, not a bound: what a test waits for are events."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    with anyio.fail_after(safety):
        async with listener, anyio.create_task_group() as group:
            group.start_soon(listener.serve, upstream)
            async with record_through_proxy(f"http://127.0.0.1:{port}") as run:
                parts = urlsplit(run.url)
                yield run, (parts.hostname or "", parts.port or 0)
            group.cancel_scope.cancel()
