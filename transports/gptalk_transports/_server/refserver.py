"""The reference GPTalk server: the core's server machine, served by anyio.

The live service is gone; this one behaves as it did (tokens, 5 uses, expiry,
error envelopes, cumulative event streams) and commits faults on request.
The listener is here; the driver of each connection (``_server_driver``) only
moves bytes within deadlines: :class:`gptalk_proto.server.ServerConnection` decides
everything else.
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio
import anyio.from_thread
from anyio.abc import TaskStatus

from gptalk_proto import LocalProtocolError
from gptalk_proto.server import (
    DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_MAX_PENDING_STREAMS,
    DEFAULT_STREAM_TTL,
    Fault,
    ReplyGenerator,
    Service,
    default_reply,
)

from .budget import DEFAULT_MAX_PARTIAL_BYTES
from .driver import (
    LOGGER_NAME,
    Limits,
    ServerStats,
    in_background,
    serve_connection,
    serve_listener,
)

__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_PARTIAL_BYTES",
    "DEFAULT_MIN_RATE",
    "DEFAULT_MIN_RATE_GRACE",
    "DEFAULT_REQUEST_TIMEOUT",
    "LOGGER_NAME",
    "ServerStats",
    "make_service",
    "serve",
    "serve_in_background",
    "serve_in_thread",
]

#: A client must send a whole request head within this many seconds of its
#: first byte (slowloris defence).
DEFAULT_HEADER_TIMEOUT = 10.0
#: A client must send a whole request, head and body, within this many
#: seconds of its first byte.  Requests are small JSON objects (1 MiB at
#: most, see ``DEFAULT_MAX_REQUEST_BODY``): 30 s leaves room for a slow link
#: while a client that trickles a body cannot hold a connection for long.
DEFAULT_REQUEST_TIMEOUT = 30.0
#: After the grace below, a request must arrive at this many bytes per
#: second on average, or it gets a 408 and is closed.  The figure is Apache
#: mod_reqtimeout's MinRate; a body trickled at one byte every two seconds
#: is dropped a few seconds in, not after ``DEFAULT_REQUEST_TIMEOUT``.
DEFAULT_MIN_RATE = 500.0
#: Seconds from a request's first byte before the minimum rate applies
#: (each byte received then buys ``1 / min_rate`` seconds more).
DEFAULT_MIN_RATE_GRACE = 5.0
#: An idle kept-alive connection, or a client that stops reading, is dropped
#: after this many seconds.
DEFAULT_IDLE_TIMEOUT = 60.0
#: Connections served at once.  Those accepted past it are closed at once,
#: unanswered (the client sees the connection closed and may retry): a
#: bounded server, not a queue that grows with the load.
DEFAULT_MAX_CONNECTIONS = 4096


def make_service(
    *,
    faults: Iterable[str | Fault] = (),
    reply: ReplyGenerator = default_reply,
    token_ttl: float = 3600.0,
    max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
    max_pending_streams: int = DEFAULT_MAX_PENDING_STREAMS,
    stream_ttl: float = DEFAULT_STREAM_TTL,
) -> Service:
    """A service whose tokens come from the operating system's entropy (the
    caps are :class:`~gptalk_proto.server.Service`'s)."""
    return Service(
        entropy=os.urandom,
        reply=reply,
        faults=faults,
        token_ttl=token_ttl,
        max_pending_bytes=max_pending_bytes,
        max_pending_streams=max_pending_streams,
        stream_ttl=stream_ttl,
    )


def _seconds(name: str, value: float, *, zero: bool = False) -> float:
    """A finite, positive number of seconds (or bytes/s); zero when allowed."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LocalProtocolError(f"{name} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        kind = "a finite number >= 0" if zero else "a finite positive number"
        raise LocalProtocolError(f"{name} must be {kind}, not {value!r}")
    return float(value)


def _limits(
    *,
    header_timeout: float,
    request_timeout: float,
    min_rate: float | None,
    min_rate_grace: float,
    idle_timeout: float,
    max_connections: int,
    max_partial_bytes: int = DEFAULT_MAX_PARTIAL_BYTES,
) -> Limits:
    """The checked limits (LocalProtocolError names a bad value)."""
    for name, value in (
        ("max_connections", max_connections),
        ("max_partial_bytes", max_partial_bytes),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise LocalProtocolError(f"{name} must be an int")
        if value < 1:
            raise LocalProtocolError(f"{name} must be at least 1, not {value}")
    return Limits(
        header_timeout=_seconds("header_timeout", header_timeout),
        request_timeout=_seconds("request_timeout", request_timeout),
        min_rate=None if min_rate is None else _seconds("min_rate", min_rate),
        min_rate_grace=_seconds("min_rate_grace", min_rate_grace, zero=True),
        idle_timeout=_seconds("idle_timeout", idle_timeout),
        max_partial_bytes=max_partial_bytes,
    )


async def serve(
    service: Service,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    min_rate: float | None = DEFAULT_MIN_RATE,
    min_rate_grace: float = DEFAULT_MIN_RATE_GRACE,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_partial_bytes: int = DEFAULT_MAX_PARTIAL_BYTES,
    stats: ServerStats | None = None,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``service`` until cancelled; ``task_status.started`` gets the URL.

    Use with ``task_group.start(serve, service)`` to learn the URL (and the
    real port when ``port`` is 0) once connections are accepted.

    A request must arrive whole within ``request_timeout`` seconds of its
    first byte, its head within ``header_timeout``, and after
    ``min_rate_grace`` seconds at ``min_rate`` bytes per second on average
    (``None``: no minimum rate); else it gets a 408 and is closed.  Past
    ``max_connections`` connections, new ones are closed unanswered.  Past
    ``max_partial_bytes`` held in requests not yet complete, across
    connections, the connections holding the most get a 503 and are closed
    (see ``.budget``).  ``stats`` (a :class:`ServerStats`) counts what
    happened.

    No request stops the server: whatever one connection raises stays in it
    (a 500 where a response can still begin, then the connection closes; one
    line on the ``gptalk_transports.server`` logger; a count in
    ``stats.internal_errors``).
    """
    limits = _limits(
        header_timeout=header_timeout,
        request_timeout=request_timeout,
        min_rate=min_rate,
        min_rate_grace=min_rate_grace,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        max_partial_bytes=max_partial_bytes,
    )
    counts = ServerStats() if stats is None else stats
    budget = limits.budget(counts)
    await serve_listener(
        lambda stream: serve_connection(
            stream, service, ssl_context, limits, counts, budget=budget
        ),
        host=host,
        port=port,
        max_connections=max_connections,
        stats=counts,
        scheme="https" if ssl_context else "http",
        task_status=task_status,
    )


@asynccontextmanager
async def serve_in_background(
    service: Service | None = None,
    *,
    faults: Iterable[str | Fault] = (),
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    min_rate: float | None = DEFAULT_MIN_RATE,
    min_rate_grace: float = DEFAULT_MIN_RATE_GRACE,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_partial_bytes: int = DEFAULT_MAX_PARTIAL_BYTES,
    stats: ServerStats | None = None,
) -> AsyncIterator[str]:
    """Run the reference server in this event loop; yield its URL.

    The arguments are :func:`serve`'s.

    >>> async with serve_in_background(faults=["cut=3"]) as url:   # doctest: +SKIP
    ...     async with AsyncClient(url) as client: ...
    """
    # Bad values are refused here, as themselves, before anything starts.
    _limits(
        header_timeout=header_timeout,
        request_timeout=request_timeout,
        min_rate=min_rate,
        min_rate_grace=min_rate_grace,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        max_partial_bytes=max_partial_bytes,
    )
    if service is None:
        service = make_service(faults=faults)
    async with in_background(
        lambda task_status: serve(
            service,
            host=host,
            port=port,
            ssl_context=ssl_context,
            header_timeout=header_timeout,
            request_timeout=request_timeout,
            min_rate=min_rate,
            min_rate_grace=min_rate_grace,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
            max_partial_bytes=max_partial_bytes,
            stats=stats,
            task_status=task_status,
        )
    ) as url:
        yield url


@contextmanager
def serve_in_thread(
    service: Service | None = None,
    *,
    faults: Iterable[str | Fault] = (),
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    min_rate: float | None = DEFAULT_MIN_RATE,
    min_rate_grace: float = DEFAULT_MIN_RATE_GRACE,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_partial_bytes: int = DEFAULT_MAX_PARTIAL_BYTES,
    stats: ServerStats | None = None,
    backend: str = "asyncio",
) -> Iterator[str]:
    """The blocking twin of :func:`serve_in_background`: the server runs in a
    thread of its own until the block ends (``backend``: asyncio or trio)."""
    _limits(
        header_timeout=header_timeout,
        request_timeout=request_timeout,
        min_rate=min_rate,
        min_rate_grace=min_rate_grace,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        max_partial_bytes=max_partial_bytes,
    )
    with anyio.from_thread.start_blocking_portal(backend) as portal:
        manager = serve_in_background(
            service,
            faults=faults,
            host=host,
            port=port,
            ssl_context=ssl_context,
            header_timeout=header_timeout,
            request_timeout=request_timeout,
            min_rate=min_rate,
            min_rate_grace=min_rate_grace,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
            max_partial_bytes=max_partial_bytes,
            stats=stats,
        )
        with portal.wrap_async_context_manager(manager) as url:
            yield url
