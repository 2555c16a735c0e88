"""The recording proxy as a run: a proxy to one upstream, started in the
background for a block, its cassette built when the block ends
(:func:`record_through_proxy`, and its blocking twin in a thread of its
own), and the recorder and connector it is made of (:func:`_recorder_for`).
The serving itself is :mod:`.proxy`'s."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import anyio
import anyio.from_thread

from gptalk_proto import LocalProtocolError
from gptalk_proto.cassette import Cassette, ProxyRecorder, profile_named

from .._async.connector import AsyncConnector
from .._config import Origin, make_ssl_context
from .._env_proxy import choose_proxy
from .driver import in_background
from .proxy import serve_proxy
from .spool import FileChunkStore

__all__ = ["ProxyRun", "record_through_proxy", "record_through_proxy_in_thread"]


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
    identity: bool = True,
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
        identity=identity,
    )
    return recorder, connector


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
    identity: bool | None = None,
) -> AsyncIterator[ProxyRun]:
    """Run a recording proxy to ``upstream`` in this event loop.

    Yields a :class:`ProxyRun`: point any client at ``run.url``; when the
    block ends, ``run.cassette`` holds what was recorded (redacted unless
    ``redact`` is False; ``secrets`` are redacted too).  With ``chats``,
    ``run.done`` is set once that many chats were recorded.  ``profile``
    names the API (``gptalk``, or ``generic`` for any SSE or JSON API: see
    :class:`gptalk_proto.cassette.Profile`): what is redacted, what a chat is.
    ``identity``: ask the upstream for uncompressed bodies (see
    ``ProxyRecorder``); by default while redacting, and it must be on for a
    cassette redacted later (as the pytest plugin redacts what it saves).

    >>> async with record_through_proxy("https://gptalk.net") as run:  # doctest: +SKIP
    ...     ...  # point any client at run.url
    >>> run.cassette  # doctest: +SKIP
    """
    # The recorded bytes wait in a file, not in memory (see .spool).
    store = FileChunkStore()
    try:
        # Redacting, the upstream is asked for bodies it did not compress:
        # redaction can neither read nor change a compressed one.
        recorder, connector = _recorder_for(
            upstream,
            proxy,
            trust_env,
            verify,
            chats is not None,
            profile=profile,
            store=store,
            identity=redact if identity is None else identity,
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
    identity: bool | None = None,
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
            identity=identity,
        )
        with portal.wrap_async_context_manager(manager) as run:
            yield run
