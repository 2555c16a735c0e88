# GENERATED from _async/client.py by `python -m tests.unasync`; do not edit.
"""Client: GPTalk chats over blocking sockets (thread-safe)."""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable, Generator, Mapping
from types import TracebackType
from typing import Any

from gptalk_proto import (
    DEFAULT_MODEL,
    DEFAULT_USER_AGENT,
    Chat,
    ChatEvent,
    ClientConnection,
    Credentials,
    GPTalkError,
    TextDelta,
    TextRewritten,
    check_header_name,
    check_header_value,
    check_text_value,
)

from .._backends.base import SyncBackend
from .._backends.sync import make_sync_backend
from .._config import DEFAULT_URL, Origin, Timeout, make_ssl_context
from .._env_proxy import choose_proxy
from .._fingerprints import Fingerprints
from .._progress import SKIP, Messages, Progress, RewritePolicy
from .._retry import RetryPolicy, RetryState, translate
from .connector import SyncConnector, SyncConnectorProtocol
from .driver import DEFAULT_MAX_IDLE, SyncPool, drive

__all__ = ["ChatStream", "Client"]


class ChatStream:
    """One chat's text deltas (or, from ``events()``, its typed events).

    Iterate over it, and use it as a context manager: ``with`` closes
    the connection even when the loop stops early.  ``text`` is the reply so
    far, ``retries`` the attempts that were made again.
    """

    def __init__(self, batches: Generator[list[ChatEvent], None, None], progress: Progress) -> None:
        self._batches = batches
        self._progress = progress
        self._batch: list[ChatEvent] = []
        self._index = 0
        # The common event, a delta for a reader of deltas, is taken in
        # __next__ (what Progress.take does for it) without a call per delta.
        self._deltas = progress.deltas_taken()

    @property
    def retries(self) -> int:
        """How many attempts were made again (after a reconnect or a retry)."""
        return self._progress.state.retries

    @property
    def text(self) -> str:
        """The reply's text so far."""
        return self._progress.text

    @property
    def done(self) -> bool:
        """Whether the reply is complete ([DONE] arrived)."""
        return self._progress.done

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> Any:
        # Nearly every step: a delta of the batch in hand, taken with the
        # fewest steps (the loop below gives the same, in more).
        index = self._index
        batch = self._batch
        if index < len(batch):
            event = batch[index]
            if type(event) is TextDelta and (deltas := self._deltas) is not None:
                self._index = index + 1
                text = event.text
                deltas.append(text)
                return text
        take = self._progress.take
        deltas = self._deltas
        while True:
            batch, index = self._batch, self._index
            try:
                while index < len(batch):
                    event = batch[index]
                    index += 1
                    if deltas is not None and type(event) is TextDelta:
                        text = event.text
                        deltas.append(text)
                        self._index = index
                        return text
                    value = take(event)
                    if value is not SKIP:
                        self._index = index
                        return value
                self._batch = next(self._batches)
                self._index = 0
            except BaseException:
                self.close()
                raise

    def _read_to_end(self, each: Callable[[Any], object] | None = None) -> None:
        # Iterating to the end, one call per batch rather than an __next__
        # per event (for readers such as a session's replay, which want the
        # whole chat): ``each`` gets every value the iteration would give, in
        # order; without it nothing is handed over, and ``text`` is the reply.
        # Errors, and the closing on them, are as the iteration's.
        progress = self._progress
        batch = self._batch[self._index :]
        self._batch, self._index = [], 0
        try:
            while True:
                if each is None:
                    progress.take_all(batch)
                else:
                    take = progress.take
                    for event in batch:
                        value = take(event)
                        if value is not SKIP:
                            each(value)
                try:
                    batch = next(self._batches)
                except StopIteration:  # the end (caught here alone: not each's)
                    break
        except BaseException:
            self.close()
            raise
        self.close()

    def close(self) -> None:
        """Stop the chat and close its connection (idempotent)."""
        self._batches.close()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Client:
    """A blocking GPTalk client, safe to share among threads.

    (Its blocking twin, ``Client``, is generated from this source: it is safe
    to share among threads, and its one backend is blocking sockets.)

    Args:
        base_url: the service (default: the original's URL; the live service is
            gone, so point it at a reference server).
        proxy: ``http://[user:pass@]host:port``, ``socks5://...`` or ``socks5h://...``.
            It wins over the environment's.
        timeout: a :class:`Timeout`, a number (connect and read), or None.
        credentials: login state to share with other clients (default: new).
        backend: ``"auto"`` (default: native asyncio on asyncio, anyio on trio),
            ``"asyncio"``, ``"anyio"`` (asyncio or trio) or ``"trio"`` (trio's own
            streams), or a backend object; the blocking client's ``"auto"`` is
            blocking sockets (its backend object also does its waits between
            attempts).
        verify: TLS verification: True (system trust store), a CA bundle path,
            an ``ssl.SSLContext``, or False (warns).
        retry: the :class:`RetryPolicy`.
        model, user_agent, headers: what every chat sends.
        connector: replaces how connections are made (record/replay use it).
        max_idle_connections: kept-alive connections kept for reuse (default
            100, as many as aiohttp's connector holds).
        clock: the unix time (default ``time.time``): it stamps requests and
            judges token expiry.  Replay passes the recorded time.
        trust_env: with no ``proxy``, use the one ``HTTPS_PROXY``,
            ``HTTP_PROXY`` or ``ALL_PROXY`` names unless ``NO_PROXY`` covers the
            host (lower-case names too, and they win), as httpx does; False
            ignores the environment.

    Use it with ``with``; every value that goes into a header is
    checked here, before anything is sent.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        proxy: str | None = None,
        timeout: Timeout | float | None = Timeout(),  # noqa: B008 - immutable
        credentials: Credentials | None = None,
        backend: str | SyncBackend = "auto",
        verify: bool | str | ssl.SSLContext = True,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - immutable
        model: str = DEFAULT_MODEL,
        user_agent: str = DEFAULT_USER_AGENT,
        headers: Mapping[str, str] | None = None,
        connector: SyncConnectorProtocol | None = None,
        max_idle_connections: int = DEFAULT_MAX_IDLE,
        clock: Callable[[], float] = time.time,
        trust_env: bool = True,
    ) -> None:
        self.origin = Origin.parse(base_url)
        self._base_url = str(self.origin)  # named in every chat's errors
        # A given connector makes the connections: no proxy of the environment's
        # applies (a replay must not be refused for a bad HTTP_PROXY).
        self.proxy = choose_proxy(self.origin, proxy, trust_env and connector is None)
        self.timeout = Timeout.coerce(timeout)
        self.credentials = credentials if credentials is not None else Credentials()
        self.backend = make_sync_backend(backend)
        self.retry = retry
        self.model = check_text_value("model", model)
        self.user_agent = check_header_value("user_agent", user_agent)
        self.headers = tuple(
            (check_header_name(k), check_header_value(f"header {k!r}", v))
            for k, v in (headers or {}).items()
        )
        if connector is None:
            ssl_context = make_ssl_context(verify) if self.origin.tls else None
            connector = SyncConnector(
                self.backend, self.origin, proxy=self.proxy, ssl_context=ssl_context
            )
        self.connector = connector
        self._pool = SyncPool(connector, self.backend, max_idle=max_idle_connections)
        self._rng = random.Random()
        self._fingerprints = Fingerprints()
        self.clock = clock

    @property
    def connections_opened(self) -> int:
        """Connections opened so far (kept-alive ones are reused)."""
        return self._pool.opened

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the kept-alive connections."""
        with self.backend.shield():
            self._pool.close()

    def stream(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        on_rewrite: RewritePolicy = "raise",
    ) -> ChatStream:
        """The reply's text deltas, as they arrive.

        When the service rewrites text already delivered, ``on_rewrite="raise"``
        raises :class:`~gptalk_proto.ContentRewritten`; ``"ignore"`` carries on
        with deltas of the new text (``stream.text`` is always right).
        """
        state = RetryState()
        progress = Progress(state, deltas=True, on_rewrite=on_rewrite)
        return ChatStream(self._run(messages, model, state), progress)

    def events(self, messages: Messages, *, model: str | None = None) -> ChatStream:
        """The chat's typed events: LoggedIn, TextDelta, TextRewritten, ChatDone."""
        state = RetryState()
        progress = Progress(state, deltas=False, on_rewrite="ignore")
        return ChatStream(self._run(messages, model, state), progress)

    def chat(self, messages: Messages, *, model: str | None = None) -> str:
        """The whole reply (rewrites included)."""
        with self.events(messages, model=model) as events:
            for _ in events:
                pass
            return events.text

    def _new_connection(self, messages: Messages, model: str | None) -> ClientConnection:
        chat = Chat(
            messages,
            credentials=self.credentials,
            # Entropy comes from here, not from the core.
            fingerprint=self._fingerprints.take(),
            model=model or self.model,
            user_agent=self.user_agent,
            extra_headers=self.headers,
            base_url=self._base_url,
        )
        options = self.connector.request_options
        return ClientConnection(
            chat,
            host=options.host,
            target_prefix=options.target_prefix,
            proxy_headers=options.proxy_headers,
        )

    def _run(
        self, messages: Messages, model: str | None, state: RetryState
    ) -> Generator[list[ChatEvent], None, None]:
        backend = self.backend
        total = self.timeout.total
        deadline = None if total is None else time.monotonic() + total
        while True:
            state.attempts += 1
            conn = self._new_connection(messages, model)
            try:
                events = drive(
                    conn,
                    self._pool,
                    self.timeout,
                    deadline,
                    shared_logins=True,
                    wall_clock=self.clock,
                )
                # What closing() does, written out: the context manager
                # was calls of its own on every chat.
                try:
                    for batch in events:
                        if not state.text_yielded:
                            # (A loop: any() over a generator costs twice as much.)
                            for e in batch:
                                if type(e) is TextDelta or type(e) is TextRewritten:
                                    state.text_yielded = True
                                    break
                        yield batch
                finally:
                    events.close()
                return
            except GPTalkError as caught:
                error = translate(caught, self.proxy)
                if error is not caught:
                    raise error from caught
                delay = self.retry.decide(error, state, self._rng, now=self.clock())
                # A wait that would end past the total timeout: fail now rather
                # than sleep into a DeadlineExceeded.
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise
                if delay:
                    backend.sleep(delay)
