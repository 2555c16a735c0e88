"""What the recording proxy's tests share: an upstream on loopback and the
proxy recording in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import anyio
import anyio.abc
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports import ServerStats
from gptalk_transports._server import proxy as proxy_module
from gptalk_transports._server import proxy_run
from gptalk_transports._server.driver import Limits, in_background
from gptalk_transports._server.proxy_run import ProxyRun, record_through_proxy
from gptalk_transports._server.refserver import DEFAULT_MAX_CONNECTIONS
from gptalk_transports._server.replay import DEFAULT_LIMITS

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


@asynccontextmanager
async def serving_proxy(
    upstream: Upstream,
    *,
    limits: Limits = DEFAULT_LIMITS,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    safety: float = 60,
) -> AsyncIterator[str]:
    """Serve ``upstream`` (called once per connection) on loopback, and the
    proxy's own server (``serve_proxy``, with these ``limits`` and
    ``max_connections``) in front of it: yields the proxy's URL.

    ``safety``: as for :func:`proxy_in_front_of`."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    recorder, connector = proxy_run._recorder_for(
        f"http://127.0.0.1:{port}", None, False, True, False
    )
    with anyio.fail_after(safety):
        async with listener, anyio.create_task_group() as group:
            group.start_soon(listener.serve, upstream)
            url = await group.start(
                lambda task_status: proxy_module.serve_proxy(
                    recorder,
                    connector,
                    limits=limits,
                    max_connections=max_connections,
                    task_status=task_status,
                )
            )
            yield url
            group.cancel_scope.cancel()


@asynccontextmanager
async def proxy_to(
    upstream: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
    count_chats: bool = False,
    stats: ServerStats | None = None,
) -> AsyncIterator[tuple[str, g.cassette.ProxyRecorder]]:
    """The proxy's own server (``serve_proxy``) in front of the service at
    ``upstream``, in the background: yields (its URL, its recorder, whose
    ``url`` is set)."""
    recorder, connector = proxy_run._recorder_for(upstream, None, False, True, count_chats)
    async with in_background(
        lambda task_status: proxy_module.serve_proxy(
            recorder,
            connector,
            limits=limits,
            max_connections=DEFAULT_MAX_CONNECTIONS,
            stats=stats,
            task_status=task_status,
        )
    ) as url:
        recorder.url = url
        yield url, recorder


def fail_the_second_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """The core raises (a bug) for the second request any proxy connection
    reads; every other request goes through."""
    real = g.cassette.ProxyConnection.client_data
    calls = 0

    def flaky(self: g.cassette.ProxyConnection, data: bytes, t: float) -> list[object]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("a bug")
        return real(self, data, t)  # type: ignore[return-value]

    monkeypatch.setattr(g.cassette.ProxyConnection, "client_data", flaky)
