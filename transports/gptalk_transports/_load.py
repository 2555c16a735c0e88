"""A bounded load run: many concurrent chats against a loopback server.

It stops by itself (after ``duration`` seconds or ``chats`` chats, whichever
comes first; with ``chats`` alone, after that many chats, whatever the clock)
and reports chats, HTTP requests and streamed events per second.  It only
talks to loopback addresses: a load generator pointed at someone else's
service by mistake is an attack, not a test.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any, NamedTuple

import anyio

from gptalk_proto import (
    ChatDone,
    Credentials,
    GPTalkError,
    LocalProtocolError,
    LoggedIn,
    TextDelta,
    TextRewritten,
)

from ._async.client import AsyncClient
from ._config import Origin, Timeout
from ._exceptions import TransportError
from ._server.refserver import serve_in_background

__all__ = ["DEFAULT_DURATION", "LoadReport", "run_load"]

#: Chat durations kept for the percentiles, at most (a long run keeps the
#: first ones only, so memory stays bounded however long it runs).
MAX_SAMPLES = 100_000

#: The longest a load run may be asked to last, in seconds.
MAX_DURATION = 3600.0

#: How long a load run starts new chats when told neither a duration nor a
#: number of chats, in seconds.
DEFAULT_DURATION = 3.0


class LoadReport(NamedTuple):
    """What a load run did.

    ``chats`` counts the chats that ended (succeeded or failed);
    ``requests`` counts HTTP requests (logins, text and stream requests,
    retries); ``events`` counts reply events received (deltas, rewrites and
    the final ``ChatDone``); ``errors`` counts failed chats by error type;
    ``chat_times`` are the durations of the chats that succeeded.  An
    ``interrupted`` run stopped early, cutting ``cut_short`` chats off
    (counted in none of the other figures).
    """

    seconds: float
    concurrency: int
    chats: int
    failed: int
    requests: int
    events: int
    logins: int
    connections: int
    errors: Mapping[str, int]
    chat_times: tuple[float, ...]
    interrupted: bool = False
    cut_short: int = 0

    @property
    def requests_per_second(self) -> float:
        """HTTP requests per second of the run (0.0 for an empty run)."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def events_per_second(self) -> float:
        """Stream events per second of the run (0.0 for an empty run)."""
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def chats_per_second(self) -> float:
        """Completed chats per second of the run (0.0 for an empty run)."""
        return self.chats / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        """A percentile of the succeeded chats' durations in seconds (nearest
        rank; 0 if none succeeded: the report then says "n/a")."""
        if not self.chat_times:
            return 0.0
        ordered = sorted(self.chat_times)
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]

    def as_dict(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict."""
        return {
            "seconds": round(self.seconds, 3),
            "concurrency": self.concurrency,
            "chats": self.chats,
            "failed": self.failed,
            "requests": self.requests,
            "events": self.events,
            "logins": self.logins,
            "connections": self.connections,
            "requests_per_second": round(self.requests_per_second, 1),
            "events_per_second": round(self.events_per_second, 1),
            "chats_per_second": round(self.chats_per_second, 1),
            # Over succeeded chats only; null when none succeeded.
            "chat_p50_ms": self._milliseconds(0.5),
            "chat_p99_ms": self._milliseconds(0.99),
            "errors": dict(self.errors),
            "interrupted": self.interrupted,
            "cut_short": self.cut_short,
        }

    def _milliseconds(self, fraction: float) -> float | None:
        return round(self.percentile(fraction) * 1000, 2) if self.chat_times else None

    def format(self) -> str:
        """A few lines for people."""
        if self.chat_times:
            times = (
                f"chat time p50 {self.percentile(0.5) * 1000:.1f} ms, "
                f"p99 {self.percentile(0.99) * 1000:.1f} ms (succeeded chats)"
            )
        else:
            times = "chat time n/a (no chat succeeded)"
        lines = [
            f"{self.chats} chats in {self.seconds:.2f} s, {self.concurrency} concurrent, "
            f"{self.failed} failed"
            + (f"; interrupted, {self.cut_short} cut short" if self.interrupted else ""),
            f"requests: {self.requests} ({self.requests_per_second:.1f}/s; "
            f"{self.logins} logins, {self.connections} connections)",
            f"events:   {self.events} ({self.events_per_second:.1f}/s)",
            f"chats:    {self.chats_per_second:.1f}/s; {times}",
        ]
        lines += [f"error:    {count} x {name}" for name, count in sorted(self.errors.items())]
        return "\n".join(lines)


def check_loopback(url: str) -> Origin:
    """The URL's origin, if its host is a loopback address; else LocalProtocolError."""
    origin = Origin.parse(url)
    host = origin.host
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if not loopback:
        raise LocalProtocolError(
            f"a load run only targets loopback addresses (127.0.0.0/8, ::1, localhost), not {host}"
        )
    return origin


async def run_load(
    url: str | None = None,
    *,
    concurrency: int = 20,
    duration: float | None = DEFAULT_DURATION,
    chats: int | None = None,
    prompt: str = "Hello, how are you?",
    timeout: Timeout = Timeout(connect=5.0, read=10.0, total=30.0),  # noqa: B008 - immutable
    backend: str = "auto",
    clock: Callable[[], float] = time.perf_counter,
    stop: anyio.Event | None = None,
) -> LoadReport:
    """Run ``concurrency`` chat loops until ``duration`` seconds have passed
    or ``chats`` chats have started; return the :class:`LoadReport`.

    ``duration=None`` bounds the run by ``chats`` alone: exactly that many
    chats run however slow the machine is (what a test wants).  With no
    ``url``, the reference server runs in this event loop.  Chats share one
    client (its connection pool and its login token, as an application
    would).  A failed chat is counted, not raised; the run lasts at most
    ``duration`` plus one chat's total timeout, or ``chats`` total timeouts.
    Setting ``stop`` ends it at once (chats under way are cut short) with the
    figures so far, marked ``interrupted``.
    """
    if not isinstance(concurrency, int) or concurrency < 1:
        raise LocalProtocolError("concurrency must be a positive int")
    if duration is None and chats is None:
        raise LocalProtocolError("a load run needs a duration, a number of chats, or both")
    if duration is not None and not 0 < duration <= MAX_DURATION:
        raise LocalProtocolError(f"duration must be in (0, {MAX_DURATION:g}] seconds")
    if chats is not None and chats < 1:
        raise LocalProtocolError("chats must be a positive int")
    if url is not None:
        check_loopback(url)
    counts: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    times: list[float] = []
    started = 0

    async def one_chat(client: AsyncClient) -> None:
        begin = clock()
        requests = 2  # the text and stream requests; logins and retries added below
        async with client.events(prompt) as stream:
            try:
                async for event in stream:
                    kind = type(event)
                    if kind is TextDelta or kind is TextRewritten or kind is ChatDone:
                        counts["events"] += 1
                    elif kind is LoggedIn:
                        counts["logins"] += 1
                        requests += 1
            except (GPTalkError, TransportError) as error:
                errors[type(error).__name__] += 1
            else:
                counts["chats_ok"] += 1
                if len(times) < MAX_SAMPLES:
                    times.append(clock() - begin)
            finally:
                counts["requests"] += requests + stream.retries

    async with AsyncExitStack() as stack:
        if url is None:
            url = await stack.enter_async_context(serve_in_background())
        client = await stack.enter_async_context(
            AsyncClient(
                url,
                timeout=timeout,
                backend=backend,
                credentials=Credentials(),
                max_idle_connections=concurrency,
                # Loopback only: a proxy from the environment would carry the
                # load elsewhere (and measure the proxy).
                trust_env=False,
            )
        )
        begin = clock()
        deadline = math.inf if duration is None else begin + duration

        async def worker() -> None:
            nonlocal started
            while clock() < deadline and (chats is None or started < chats):
                started += 1
                try:
                    await one_chat(client)
                except anyio.get_cancelled_exc_class():
                    counts["cut_short"] += 1  # the run was stopped
                    raise

        async with anyio.create_task_group() as watcher:
            with anyio.CancelScope() as work:
                if stop is not None:

                    async def watch(event: anyio.Event) -> None:
                        await event.wait()
                        work.cancel()

                    watcher.start_soon(watch, stop)
                async with anyio.create_task_group() as group:
                    for _ in range(concurrency):
                        group.start_soon(worker)
            watcher.cancel_scope.cancel()
        seconds = clock() - begin
        connections = client.connections_opened
    return LoadReport(
        seconds=seconds,
        concurrency=concurrency,
        chats=started - counts["cut_short"],
        failed=sum(errors.values()),
        requests=counts["requests"],
        events=counts["events"],
        logins=counts["logins"],
        connections=connections,
        errors=dict(errors),
        chat_times=tuple(times),
        interrupted=work.cancelled_caught,
        cut_short=counts["cut_short"],
    )
