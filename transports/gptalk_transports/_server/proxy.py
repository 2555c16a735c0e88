"""The recording proxy's IO: :class:`gptalk_proto.ProxyRecorder` behind the
shared accept loop, with the client's connector (TLS verified, upstream
proxies) for the upstream side.

Per client connection, two loops move bytes: client to upstream (requests,
as the core rewrote them) and upstream to client, where each read is written
to the client before the next one is read -- the tee the core asks for.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone

import anyio
import anyio.from_thread
from anyio.abc import ByteStream, TaskStatus

from gptalk_proto import LocalProtocolError
from gptalk_proto.cassette import Cassette, ProxyRecorder, ToClient, ToUpstream, profile_named

from .._async.connector import AsyncConnector
from .._backends.base import AsyncByteStream
from .._config import Origin, make_ssl_context
from .._env_proxy import choose_proxy
from .._exceptions import TransportError
from .driver import Limits, ServerStats, in_background, serve_listener
from .refserver import DEFAULT_MAX_CONNECTIONS
from .replay import DEFAULT_LIMITS, RequestClock, _no_delay, read_within
from .spool import FileChunkStore

__all__ = ["ProxyRun", "record_through_proxy", "record_through_proxy_in_thread", "serve_proxy"]

#: Seconds to open the upstream connection (TCP, proxy handshake, TLS).
CONNECT_TIMEOUT = 30.0
#: Seconds a write to either side may take before that peer counts as gone.
SEND_TIMEOUT = 60.0
#: Most bytes one upstream read takes, each then written whole to the client
#: (and held by the recorder, as one chunk, anyway).  As large as the most
#: asyncio's socket transport reads at once (256 KiB): anyio hands a smaller
#: ``receive`` the head of that read and copies the rest back into its queue,
#: again at every read: a large stream's copying was quadratic per
#: transport read, the largest cost in the proxy's profile of the
#: benchmark's 64 KB reply.  trio reads at most this, and returns what one
#: ``recv`` got (as the client's driver does, with the same size).
UPSTREAM_READ_SIZE = 256 * 1024


def _bad_gateway(text: str) -> bytes:
    body = json.dumps({"code": 502, "msg": text}).encode()
    return (
        b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
    )


async def _proxy_one(
    client: ByteStream,
    *,
    proxy: ProxyRecorder,
    connector: AsyncConnector,
    clock: Callable[[], float],
    limits: Limits,
    on_chat: Callable[[], None],
) -> None:
    _no_delay(client)
    conn = proxy.connection()
    upstream: AsyncByteStream | None = None
    pump_done = anyio.Event()

    async def pump(upstream: AsyncByteStream, group_scope: anyio.CancelScope) -> None:
        # Upstream to client, one read at a time: each goes out before the
        # next is read (tee, never buffer).
        try:
            while True:
                try:
                    data = await upstream.receive_some(UPSTREAM_READ_SIZE, None)
                except TransportError:
                    data = b""
                chats = proxy.chats
                out = conn.upstream_data(data, clock())
                if proxy.chats != chats:
                    on_chat()
                if not data:
                    break
                with anyio.fail_after(SEND_TIMEOUT):
                    await client.send(out)
        finally:
            pump_done.set()
            group_scope.cancel()

    try:
        async with anyio.create_task_group() as group:
            deadlines = RequestClock(limits)
            while True:
                data = await read_within(client, deadlines)
                if not data:
                    # The client is done (or idle): let a response in flight finish.
                    if upstream is not None and conn.pending:
                        with anyio.move_on_after(limits.idle_timeout):
                            await pump_done.wait()
                    group.cancel_scope.cancel()
                    return
                actions = conn.client_data(data, clock())
                if actions:
                    deadlines.answered()  # a whole request went on
                for action in actions:
                    if isinstance(action, ToUpstream):
                        if upstream is None:
                            try:
                                upstream = await connector.connect(CONNECT_TIMEOUT)
                            except TransportError as exc:
                                await client.send(_bad_gateway(f"upstream unreachable: {exc}"))
                                group.cancel_scope.cancel()
                                return
                            group.start_soon(pump, upstream, group.cancel_scope)
                        try:
                            await upstream.send_all(action.data, SEND_TIMEOUT)
                        except TransportError:
                            group.cancel_scope.cancel()
                            return
                    elif isinstance(action, ToClient):
                        with anyio.fail_after(SEND_TIMEOUT):
                            await client.send(action.data)
                        if action.close:
                            group.cancel_scope.cancel()
                            return
    finally:
        if upstream is not None:
            with anyio.CancelScope(shield=True), suppress(Exception):
                await upstream.aclose()


@dataclass
class ProxyRun:
    """A running recording proxy: its URL, and the cassette once it stopped."""

    url: str
    #: The recorder, while the proxy runs (its recorded bytes wait in a
    #: file that goes with the proxy: afterwards, read ``cassette``).
    recorder: ProxyRecorder
    #: Set once ``chats`` chats were recorded (when a count was given).
    done: anyio.Event = field(default_factory=anyio.Event)
    #: The cassette, set when the proxy's block ends.
    cassette: Cassette | None = None


def _recorder_for(
    upstream: str,
    proxy: str | None,
    trust_env: bool,
    verify: bool | str | ssl.SSLContext,
    count_chats: bool,
    *,
    profile: str = "gptalk",
    store: FileChunkStore | None = None,
) -> tuple[ProxyRecorder, AsyncConnector]:
    origin = Origin.parse(upstream)
    if origin.path:
        raise LocalProtocolError(
            "recording a service under a base path is not supported: give its root URL"
        )
    # "auto": asyncio's own transports on asyncio (a read that finds bytes
    # returns at once, a timer only for a read that waits: no cancel scope
    # per read or write), anyio's elsewhere (trio).
    connector = AsyncConnector(
        "auto",
        origin,
        proxy=choose_proxy(origin, proxy, trust_env),
        ssl_context=make_ssl_context(verify) if origin.tls else None,
    )
    options = connector.request_options
    recorder = ProxyRecorder(
        upstream,
        host=options.host,
        target_prefix=options.target_prefix,
        proxy_headers=options.proxy_headers,
        count_chats=count_chats,
        profile=profile_named(profile),
        store=store,
    )
    return recorder, connector


async def serve_proxy(
    recorder: ProxyRecorder,
    connector: AsyncConnector,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: Limits = DEFAULT_LIMITS,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    on_chat: Callable[[], None] = lambda: None,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the recording proxy until cancelled; ``task_status.started``
    gets its URL (set it as ``recorder.url`` too, for the 501 that refuses
    ``CONNECT``)."""
    origin = time.monotonic()

    def clock() -> float:
        return time.monotonic() - origin

    await serve_listener(
        lambda stream: _proxy_one(
            stream,
            proxy=recorder,
            connector=connector,
            clock=clock,
            limits=limits,
            on_chat=on_chat,
        ),
        host=host,
        port=port,
        max_connections=max_connections,
        stats=ServerStats(),
        task_status=task_status,
    )


@asynccontextmanager
async def record_through_proxy(
    upstream: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    proxy: str | None = None,
    trust_env: bool = True,
    verify: bool | str | ssl.SSLContext = True,
    chats: int | None = None,
    redact: bool = True,
    secrets: tuple[str, ...] = (),
    profile: str = "gptalk",
) -> AsyncIterator[ProxyRun]:
    """Run a recording proxy to ``upstream`` in this event loop.

    Yields a :class:`ProxyRun`: point any client at ``run.url``; when the
    block ends, ``run.cassette`` holds what was recorded (redacted unless
    ``redact`` is False; ``secrets`` are redacted too).  With ``chats``,
    ``run.done`` is set once that many chats were recorded.  ``profile``
    names the API (``gptalk``, or ``generic`` for any SSE or JSON API: see
    :class:`gptalk_proto.cassette.Profile`): what is redacted, what a chat is.

    >>> async with record_through_proxy("https://gptalk.net") as run:  # doctest: +SKIP
    ...     ...  # point any client at run.url
    >>> run.cassette  # doctest: +SKIP
    """
    # The recorded bytes wait in a file, not in memory (see .spool).
    store = FileChunkStore()
    try:
        recorder, connector = _recorder_for(
            upstream, proxy, trust_env, verify, chats is not None, profile=profile, store=store
        )
    except BaseException:
        store.close()
        raise
    recorded_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    run: ProxyRun | None = None

    def chat_done() -> None:
        if run is not None and chats is not None and recorder.chats >= chats:
            run.done.set()

    try:
        async with in_background(
            lambda task_status: serve_proxy(
                recorder,
                connector,
                host=host,
                port=port,
                on_chat=chat_done,
                task_status=task_status,
            )
        ) as url:
            recorder.url = url
            run = ProxyRun(url, recorder)
            yield run
    finally:
        # Once the proxy is gone, whatever the caller's block raised.
        try:
            if run is not None:
                run.cassette = recorder.cassette(
                    recorded_at=recorded_at, redact=redact, secrets=secrets
                )
        finally:
            store.close()


@contextmanager
def record_through_proxy_in_thread(
    upstream: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    proxy: str | None = None,
    trust_env: bool = True,
    verify: bool | str | ssl.SSLContext = True,
    redact: bool = True,
    secrets: tuple[str, ...] = (),
    backend: str = "asyncio",
    profile: str = "gptalk",
) -> Iterator[ProxyRun]:
    """The blocking twin of :func:`record_through_proxy`: the proxy runs in a
    thread of its own until the block ends (``backend``: asyncio or trio)."""
    with anyio.from_thread.start_blocking_portal(backend) as portal:
        manager = record_through_proxy(
            upstream,
            host=host,
            port=port,
            proxy=proxy,
            trust_env=trust_env,
            verify=verify,
            redact=redact,
            secrets=secrets,
            profile=profile,
        )
        with portal.wrap_async_context_manager(manager) as run:
            yield run
