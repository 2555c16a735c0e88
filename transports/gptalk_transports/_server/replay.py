"""The replay server's IO: the core's :class:`gptalk_proto.ReplayServer`
behind the shared accept loop (``_server_driver.serve_listener``).

This module only moves bytes: it reads a client's requests within the idle
deadline, hands them to the core, and writes each recorded read as one
``send`` on a ``TCP_NODELAY`` socket after the wait the core gives, so a
client sees the recorded chunk boundaries and pace.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import TextIO

import anyio
import anyio.from_thread
from anyio.abc import ByteStream, SocketAttribute, TaskStatus

from gptalk_proto.cassette import (
    Cassette,
    CassetteUnplayed,
    ReplayClose,
    ReplayDelivered,
    Replayer,
    ReplayMismatch,
    ReplayServer,
    ReplayWrite,
    profile_named,
)

from .._cassettes import load_cassette
from .budget import SHED_RESPONSE, PartialBudget, PartialHold
from .driver import (
    FAREWELL_TIMEOUT,
    READ_SIZE,
    Limits,
    ServerStats,
    in_background,
    serve_listener,
)
from .refserver import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MIN_RATE,
    DEFAULT_MIN_RATE_GRACE,
    DEFAULT_REQUEST_TIMEOUT,
)

__all__ = ["replay_server", "serve_cassettes", "serve_cassettes_in_thread", "serve_replay"]

#: A client that does not take a recorded read within this many seconds has
#: stopped reading: its connection is dropped, not waited for.
SEND_TIMEOUT = 60.0

OnMismatch = Callable[[str], None]


def _no_delay(stream: ByteStream) -> None:
    """``TCP_NODELAY``: each write leaves at once, as its own segment, so a
    small recorded read is not held back to be merged with the next one."""
    with suppress(Exception):
        raw = stream.extra(SocketAttribute.raw_socket)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class RequestClock:
    """The reference server's request deadlines (``Limits``) for a driver
    that sees only bytes in and answers out: a request's first byte starts
    its clock, an answer stops it."""

    def __init__(self, limits: Limits, now: Callable[[], float] = anyio.current_time) -> None:
        self.limits = limits
        # The event loop's clock (``now``: the same one, read more cheaply
        # where the caller knows the loop: anyio's asks which loop it is
        # at every call, the largest part of a request's deadline keeping).
        self.now = now
        self.started: float | None = None
        self.received = 0

    def timeout(self) -> float:
        """Seconds the next read may wait."""
        if self.started is None:  # between requests: no clock to read
            return self.limits.idle_timeout
        deadline = self.limits.request_deadline(self.started, self.received, in_head=True)
        return max(deadline - self.now(), 0.0)

    def got(self, data: bytes) -> None:
        if self.started is None:
            self.started = self.now()
        self.received += len(data)

    def answered(self) -> None:
        self.started, self.received = None, 0


#: The replay server's and the recording proxy's deadlines: the reference
#: server's defaults (a request head within 10 s of its first byte, at 500
#: bytes/s after 5 s; 60 s idle), so a client that trickles a request cannot
#: hold a connection slot.
DEFAULT_LIMITS = Limits(
    header_timeout=DEFAULT_HEADER_TIMEOUT,
    request_timeout=DEFAULT_REQUEST_TIMEOUT,
    min_rate=DEFAULT_MIN_RATE,
    min_rate_grace=DEFAULT_MIN_RATE_GRACE,
    idle_timeout=DEFAULT_IDLE_TIMEOUT,
)


async def read_within(
    stream: ByteStream, clock: RequestClock, hold: PartialHold | None = None
) -> bytes:
    """The next bytes from a client; ``b""`` at its end, or when it is idle
    or too slow with a request (RFC 9112 section 9.5 lets a server close),
    or when ``hold`` was shed meanwhile (see .budget)."""
    data = b""
    with anyio.move_on_after(clock.timeout()) as scope:
        if hold is not None:
            hold.evict = scope.cancel
        try:
            data = await stream.receive(READ_SIZE)
        except anyio.EndOfStream:
            return b""
    if data:
        clock.got(data)
    return data


async def _serve_one(
    stream: ByteStream,
    server: ReplayServer,
    limits: Limits,
    on_mismatch: OnMismatch | None,
    on_response: Callable[[], None] | None,
    *,
    budget: PartialBudget,
) -> None:
    _no_delay(stream)
    conn = server.connection()
    clock = RequestClock(limits)
    # This connection's partial requests in the server's budget (see .budget).
    hold = budget.hold()
    shed = False  # shed at a read: a 503 once its whole requests are answered
    try:
        while True:
            data = await read_within(stream, clock, hold)
            if not data:
                if hold.shed:  # the read was cancelled for it
                    shed = True
                    break
                return
            actions = conn.receive_data(data)
            if actions:
                clock.answered()
            # The common request comes whole in one read: nothing to count.
            # Shed by this read, the requests it completed are answered
            # first (they matched: their session moved past their steps, a
            # retry of one would match nothing), as at the reference server
            # and the proxy; the 503 is for the rest.
            partial = conn.partial
            if (partial or hold.held) and not hold.after_read(
                len(data), answered=bool(actions), partial=partial
            ):
                shed = True
            # Not held across the waits beside the core's copy: a read per
            # connection, uncounted by the budget.
            del data
            closing = False
            for action in actions:
                if isinstance(action, ReplayWrite):
                    if action.delay > 0:
                        await anyio.sleep(action.delay)
                    with anyio.fail_after(SEND_TIMEOUT):
                        await stream.send(action.data)
                elif isinstance(action, ReplayDelivered):
                    # Every write of that step returned: played (not merely
                    # matched; a client gone mid-response raised above).
                    conn.delivered(action)
                elif isinstance(action, ReplayMismatch):
                    if on_mismatch is not None:
                        on_mismatch(action.text)
                elif isinstance(action, ReplayClose):
                    closing = True
                    break
            # Also for an answer that closes (a recorded stream cut off, a
            # refusal): --once exits after a last step whose server closed.
            if actions and on_response is not None:
                on_response()
            if closing:
                return
            if hold.shed:  # while answering, by another connection's read
                break
            # Asked for (Expect: 100-continue) by the request begun, after
            # the answers to those before it.
            if partial and (early := conn.interim_response()):
                with anyio.fail_after(SEND_TIMEOUT):
                    await stream.send(early)
        if shed:
            with anyio.move_on_after(FAREWELL_TIMEOUT):
                await stream.send(SHED_RESPONSE)
    finally:
        hold.release()
        conn.close()


def replay_server(
    paths: Sequence[str | Path | Cassette],
    *,
    speed: float = 1.0,
    max_gap: float | None = None,
    profile: str | None = None,
    volatile: Sequence[str] = (),
    secrets: Sequence[str] = (),
    replayer: Callable[[Cassette], Replayer] | None = None,
) -> ReplayServer:
    """A :class:`gptalk_proto.ReplayServer` for cassette files (or cassettes).

    ``profile`` says how requests match (default: each cassette's own);
    ``volatile`` names JSON body fields to ignore too (values that change
    from run to run); ``secrets`` are never quoted in a mismatch (the 409,
    the stderr line).  ``replayer``: one replayer per cassette, shared by
    the sessions (see ``ReplayServer``), which matches as it was made to.
    """
    cassettes = [p if isinstance(p, Cassette) else load_cassette(p) for p in paths]
    names = [
        f"cassette {n + 1}" if isinstance(p, Cassette) else str(p) for n, p in enumerate(paths)
    ]
    chosen = None
    if profile is not None or volatile:
        base = profile_named(profile if profile is not None else cassettes[0].profile)
        chosen = base.with_volatile(volatile)
    # Tokens with a random part: a client cannot play another's session.
    return ReplayServer(
        cassettes,
        speed=speed,
        max_gap=max_gap,
        names=names,
        profile=chosen,
        entropy=os.urandom,
        secrets=secrets,
        replayer=replayer,
    )


async def serve_replay(
    server: ReplayServer,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: Limits = DEFAULT_LIMITS,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    stats: ServerStats | None = None,
    on_mismatch: OnMismatch | None = None,
    on_response: Callable[[], None] | None = None,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``server`` until cancelled; ``task_status.started`` gets the URL.

    ``on_mismatch`` gets the text of each request that matched nothing (the
    client got a 409 with the same text in JSON); ``on_response`` is called
    after each answered read of requests (``--once`` checks there).  Past
    ``limits.max_partial_bytes`` held in requests not yet complete, across
    connections, the connections holding the most get a 503 and are closed
    (see ``.budget``).
    """
    counts = ServerStats() if stats is None else stats
    budget = limits.budget(counts)
    await serve_listener(
        lambda stream: _serve_one(stream, server, limits, on_mismatch, on_response, budget=budget),
        host=host,
        port=port,
        max_connections=max_connections,
        stats=counts,
        task_status=task_status,
    )


#: Seconds between two looks at the answers still being written, while a
#: stopping server waits for them (see finish_answers).
ANSWERS_POLL = 0.005


async def finish_answers(server: ReplayServer) -> None:
    """Before a replay server stops: give the answers its connections are
    still writing up to FAREWELL_TIMEOUT to go out whole.

    A step counts as played once its answer's last write returned.  A
    client can read an answer whole while the server's last write still
    waits on flow control (asyncio resumes the writer a loop turn later),
    and a client that then ends the server's block or signals it must not
    find the step unplayed.  A client that stopped reading keeps the stop
    waiting no longer than a last word does; its step stays unplayed."""
    with anyio.move_on_after(FAREWELL_TIMEOUT):
        while server.answering:
            await anyio.sleep(ANSWERS_POLL)


def _stderr(text: str) -> None:
    sys.stderr.write(f"gptalk replay server: {text}\n")


@asynccontextmanager
async def serve_cassettes(
    paths: Sequence[str | Path | Cassette],
    *,
    speed: float = 1.0,
    max_gap: float | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    check_played: bool = True,
    on_mismatch: OnMismatch | None = _stderr,
    server: ReplayServer | None = None,
    profile: str | None = None,
    volatile: Sequence[str] = (),
) -> AsyncIterator[str]:
    """Serve the cassettes' chats to any HTTP client in this event loop;
    yield the URL.

    At the end of the block, with ``check_played``, a step that no client
    played raises :class:`gptalk_proto.CassetteUnplayed` (unless the block
    raised).  Mismatches go to ``on_mismatch`` (stderr by default).
    ``profile`` and ``volatile``: see :func:`replay_server`.

    >>> async with serve_cassettes(["cassettes/plain-chat.json"]) as url:  # doctest: +SKIP
    ...     ...  # point any client at url
    """
    replay = (
        server
        if server is not None
        else replay_server(paths, speed=speed, max_gap=max_gap, profile=profile, volatile=volatile)
    )
    async with in_background(
        lambda task_status: serve_replay(
            replay, host=host, port=port, on_mismatch=on_mismatch, task_status=task_status
        )
    ) as url:
        yield url
        await finish_answers(replay)
    if check_played:
        missing = replay.unplayed()
        if missing:
            raise CassetteUnplayed(
                [(step - 1, f"{kind} of {name}") for name, step, kind in missing]
            )


@contextmanager
def serve_cassettes_in_thread(
    paths: Sequence[str | Path | Cassette],
    *,
    speed: float = 1.0,
    max_gap: float | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    check_played: bool = True,
    on_mismatch: OnMismatch | None = _stderr,
    backend: str = "asyncio",
    server: ReplayServer | None = None,
    profile: str | None = None,
    volatile: Sequence[str] = (),
) -> Iterator[str]:
    """The blocking twin of :func:`serve_cassettes`: the server runs in a
    thread of its own until the block ends (``backend``: asyncio or trio)."""
    replay = (
        server
        if server is not None
        else replay_server(paths, speed=speed, max_gap=max_gap, profile=profile, volatile=volatile)
    )
    with anyio.from_thread.start_blocking_portal(backend) as portal:
        manager = serve_cassettes(
            paths,
            host=host,
            port=port,
            check_played=check_played,
            on_mismatch=on_mismatch,
            server=replay,
        )
        with portal.wrap_async_context_manager(manager) as url:
            yield url


def report_unplayed(server: ReplayServer, err: TextIO) -> bool:
    """Write one line per unplayed step to ``err``; True if there was any."""
    missing = server.unplayed()
    for name, step, kind in missing:
        err.write(f"gptalk: unplayed: {name} step {step} ({kind})\n")
    return bool(missing)
