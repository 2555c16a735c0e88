"""The reference GPTalk server: the core's server machine, served by anyio.

The live service is gone; this one behaves as it did (tokens, 5 uses, expiry,
error envelopes, cumulative event streams) and commits faults on request.
The driver below only moves bytes: :class:`gptalk_proto.ServerConnection`
decides everything.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio
import anyio.from_thread
from anyio.abc import ByteStream, SocketAttribute, TaskStatus
from anyio.streams.tls import TLSStream

from gptalk_proto import (
    DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_MAX_PENDING_STREAMS,
    DEFAULT_STREAM_TTL,
    NEED_DATA,
    PAUSED,
    Fault,
    Pause,
    ReplyGenerator,
    Send,
    ServerConnection,
    Service,
    default_reply,
)

__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "make_service",
    "serve",
    "serve_in_background",
    "serve_in_thread",
]

#: A client must send a whole request head within this many seconds of its
#: first byte (slowloris defence).
DEFAULT_HEADER_TIMEOUT = 10.0
#: An idle kept-alive connection, or a client that stops reading, is dropped
#: after this many seconds.
DEFAULT_IDLE_TIMEOUT = 60.0
#: Connections served at once; more are closed at accept.
DEFAULT_MAX_CONNECTIONS = 4096
#: Bytes read at a time from a client.
READ_SIZE = 64 * 1024

_GONE = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,
    ssl.SSLError,
    TimeoutError,
)


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
    caps are :class:`~gptalk_proto.Service`'s)."""
    return Service(
        entropy=os.urandom,
        reply=reply,
        faults=faults,
        token_ttl=token_ttl,
        max_pending_bytes=max_pending_bytes,
        max_pending_streams=max_pending_streams,
        stream_ttl=stream_ttl,
    )


async def _serve_connection(
    stream: ByteStream,
    service: Service,
    ssl_context: ssl.SSLContext | None,
    header_timeout: float,
    idle_timeout: float,
) -> None:
    conn = ServerConnection(service)
    try:
        if ssl_context is not None:
            with anyio.fail_after(header_timeout):
                stream = await TLSStream.wrap(
                    stream, server_side=True, ssl_context=ssl_context, standard_compatible=False
                )
        head_deadline: float | None = None
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                if conn.waiting_for_head:
                    if head_deadline is None:
                        head_deadline = anyio.current_time() + header_timeout
                    wait = head_deadline - anyio.current_time()
                else:
                    head_deadline = None
                    wait = idle_timeout
                with anyio.fail_after(max(wait, 0)):
                    try:
                        data = await stream.receive(READ_SIZE)
                    except anyio.EndOfStream:
                        data = b""
                conn.receive_data(data)
                continue
            if event is PAUSED:
                return
            head_deadline = None
            for action in conn.respond(event, now=time.time()):  # type: ignore[arg-type]
                if isinstance(action, Send):
                    # A client that stops reading is dropped, not waited for.
                    with anyio.fail_after(idle_timeout):
                        await stream.send(action.data)
                elif isinstance(action, Pause):
                    await anyio.sleep(action.seconds)
                else:
                    return
    except _GONE:
        return
    finally:
        await anyio.aclose_forcefully(stream)


async def serve(
    service: Service,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``service`` until cancelled; ``task_status.started`` gets the URL.

    Use with ``task_group.start(serve, service)`` to learn the URL (and the
    real port when ``port`` is 0) once connections are accepted.
    """
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    active = 0

    async def handle(stream: ByteStream) -> None:
        nonlocal active
        if active >= max_connections:
            await anyio.aclose_forcefully(stream)
            return
        active += 1
        try:
            await _serve_connection(stream, service, ssl_context, header_timeout, idle_timeout)
        finally:
            active -= 1

    async with listener:
        bound = listener.extra(SocketAttribute.local_port)
        shown = f"[{host}]" if ":" in host else host
        task_status.started(f"{'https' if ssl_context else 'http'}://{shown}:{bound}")
        await listener.serve(handle)


@asynccontextmanager
async def serve_in_background(
    service: Service | None = None,
    *,
    faults: Iterable[str | Fault] = (),
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> AsyncIterator[str]:
    """Run the reference server in this event loop; yield its URL.

    >>> async with serve_in_background(faults=["cut=3"]) as url:   # doctest: +SKIP
    ...     async with AsyncClient(url) as client: ...
    """
    if service is None:
        service = make_service(faults=faults)
    # An error in the caller's block must reach the caller as itself, not
    # wrapped in the task group's ExceptionGroup: hold it until the server
    # task is gone, then raise it.
    failure: BaseException | None = None
    async with anyio.create_task_group() as group:
        url = await group.start(
            lambda task_status: serve(
                service,
                host=host,
                port=port,
                ssl_context=ssl_context,
                header_timeout=header_timeout,
                idle_timeout=idle_timeout,
                task_status=task_status,
            )
        )
        try:
            yield url
        except BaseException as exc:
            failure = exc
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure


@contextmanager
def serve_in_thread(
    service: Service | None = None,
    *,
    faults: Iterable[str | Fault] = (),
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    backend: str = "asyncio",
) -> Iterator[str]:
    """The blocking twin of :func:`serve_in_background`: the server runs in a
    thread of its own until the block ends."""
    with anyio.from_thread.start_blocking_portal(backend) as portal:
        manager = serve_in_background(
            service,
            faults=faults,
            host=host,
            port=port,
            ssl_context=ssl_context,
            header_timeout=header_timeout,
            idle_timeout=idle_timeout,
        )
        with portal.wrap_async_context_manager(manager) as url:
            yield url
