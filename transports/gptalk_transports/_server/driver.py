"""One connection of the reference server: bytes between a stream and the
core's :class:`gptalk_proto.server.ServerConnection`, within deadlines.

Two rules live here.

* **Every request is read within deadlines.**  From its first byte, a request
  (head and body) must arrive whole within ``request_timeout``, its head within
  ``header_timeout``, and, after ``min_rate_grace`` seconds, at ``min_rate``
  bytes per second on average.  A client that falls behind gets a 408 and is
  closed: a body trickled one byte at a time cannot hold a connection slot.
* **Partial requests are held within a server-wide budget.**  Each
  connection's request counts while it arrives; past ``max_partial_bytes``
  across the server, the connections holding the most are shed: a 503 where
  no response began, then closed (see :mod:`.budget`).
* **Whatever one connection raises stays in it.**  An exception from the core,
  the service or this driver (a bug: disconnects and timeouts are not
  exceptions here) ends that connection only: it gets a 500 if no byte of a
  response went out yet, then it is closed; the server logs one line and
  counts it in :attr:`ServerStats.internal_errors`.  The listener and every
  other connection go on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any, NamedTuple

import anyio
from anyio.abc import ByteStream, SocketAttribute, SocketListener, TaskStatus
from anyio.streams.tls import TLSStream

import gptalk_proto
from gptalk_proto import NEED_DATA, PAUSED
from gptalk_proto.server import BadRequest, Pause, Send, ServerConnection, Service

from .budget import DEFAULT_MAX_PARTIAL_BYTES, PartialBudget

__all__ = [
    "ACCEPT_RETRY_DELAY",
    "LOGGER_NAME",
    "Limits",
    "PartialBudget",
    "ServerStats",
    "asyncio_accept_errors",
    "in_background",
    "serve_connection",
    "serve_contained",
    "serve_listener",
]

#: The logger of the reference server: one line per internal error (level
#: ERROR), never a traceback, never request data.
LOGGER_NAME = "gptalk_transports.server"

#: Bytes read at a time from a client.
READ_SIZE = 64 * 1024

#: Seconds a last word (a 408 or a 500) may take to go out before the
#: connection is closed anyway: the client it is for may have stopped reading.
FAREWELL_TIMEOUT = 2.0

#: Seconds the accept loop waits after the listener failed to accept (out
#: of file descriptors: EMFILE/ENFILE, or of kernel memory) before it tries
#: again: the connections being served free descriptors as they end, and a
#: loop that retried at once would spin.  The pending connection stays in
#: the listen queue meanwhile.
ACCEPT_RETRY_DELAY = 0.1

#: Characters of each variable part of a log line (an exception's type, where
#: it was raised, the peer's address): a log line stays one short line.
LOG_FIELD_LIMIT = 100

_logger = logging.getLogger(LOGGER_NAME)

# The core's and the transports' package directories (their subpackages
# included): a log line names the last frame of ours an error went through.
_OUR_DIRS = (
    os.path.dirname(gptalk_proto.__file__ or "") + os.sep,
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
)

# What a peer that went away looks like; anything else raised is a bug.
_GONE = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,  # includes ssl.SSLError and the socket's own TimeoutError
)


@dataclass
class ServerStats:
    """What a reference server counted while it ran.

    Pass one to :func:`serve` (or ``serve_in_background`` /
    ``serve_in_thread``) and read it while the server runs; only the server's
    event loop writes it.
    """

    #: Connections accepted and served (or being served).
    accepted: int = 0
    #: Connections closed at accept, unanswered, because ``max_connections``
    #: were being served.
    refused: int = 0
    #: Connections being served now.
    active: int = 0
    #: Requests dropped with a 408 for missing a deadline or the minimum rate.
    timed_out: int = 0
    #: Connections ended by an exception (a bug), each logged in one line.
    internal_errors: int = 0
    #: Times the listener could not accept (out of file descriptors or
    #: memory); the 1st, 2nd, 4th, 8th... are logged, each in one line.
    accept_errors: int = 0
    #: Connections shed (a 503 where one could go, then closed) because
    #: the partial requests held across connections passed
    #: ``Limits.max_partial_bytes``.
    shed: int = 0
    #: Bytes of partial requests held now, across connections, as counted
    #: against ``Limits.max_partial_bytes`` (see ``.budget``).
    partial_bytes: int = 0


class Limits(NamedTuple):
    """The deadlines of one connection, in seconds (``min_rate`` in bytes/s),
    and the bytes of partial requests a server holds across connections."""

    header_timeout: float
    request_timeout: float
    min_rate: float | None
    min_rate_grace: float
    idle_timeout: float
    #: The server-wide budget on bytes held in partial requests (see .budget).
    max_partial_bytes: int = DEFAULT_MAX_PARTIAL_BYTES

    def budget(self, stats: ServerStats) -> PartialBudget:
        """A new server's budget on partial requests, counted in ``stats``."""
        return PartialBudget(self.max_partial_bytes, stats)

    def request_deadline(self, started: float, received: int, *, in_head: bool) -> float:
        """When a request begun at ``started``, ``received`` bytes in, is too late."""
        deadline = started + self.request_timeout
        if in_head:
            deadline = min(deadline, started + self.header_timeout)
        if self.min_rate is not None:
            # After the grace, the bytes so far must average min_rate: each
            # byte buys 1/min_rate seconds (Apache's mod_reqtimeout MinRate).
            deadline = min(deadline, started + self.min_rate_grace + received / self.min_rate)
        return deadline


class _Gone(Exception):
    """The peer went away, stopped reading, or broke its stream: close quietly."""


def _field(text: str) -> str:
    """A log field: printable characters only, bounded."""
    clean = "".join(c if c.isprintable() else "?" for c in text[: LOG_FIELD_LIMIT + 1])
    return clean if len(clean) <= LOG_FIELD_LIMIT else clean[:LOG_FIELD_LIMIT] + "..."


def _peer_name(stream: ByteStream) -> str:
    """``host:port`` of the client, for log lines (``?`` when unknown)."""
    try:
        address = stream.extra(SocketAttribute.remote_address)
    except Exception:
        return "?"
    if isinstance(address, tuple):
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address) or "?"


def _where(error: BaseException) -> str:
    """``file.py:LINE in function`` where ``error`` was raised, and the last
    frame of this toolkit's code on its way when that is another one.

    Code locations only: the message of an exception may quote request data
    (a token, a prompt), so it never reaches the log.
    """
    last = ours = None
    tb = error.__traceback__
    while tb is not None:
        last = tb
        if tb.tb_frame.f_code.co_filename.startswith(_OUR_DIRS):
            ours = tb
        tb = tb.tb_next
    if last is None:
        return "?"
    frames = [last] if ours is None or ours is last else [last, ours]
    return ", via ".join(
        f"{os.path.basename(t.tb_frame.f_code.co_filename)}:{t.tb_lineno} "
        f"in {t.tb_frame.f_code.co_name}"
        for t in frames
    )


class _Connection:
    """The read-answer loop of one connection."""

    def __init__(
        self,
        stream: ByteStream,
        service: Service,
        limits: Limits,
        stats: ServerStats,
        budget: PartialBudget,
    ) -> None:
        self.stream = stream
        self.conn = ServerConnection(service)
        self.limits = limits
        self.stats = stats
        # True once a byte of the current response went out: past that point
        # no other response can be sent on this connection.
        self.answering = False
        # This connection's partial requests in the server's budget; a read
        # it waits in is cancelled when another connection's read sheds it.
        self.hold = budget.hold()
        # Set once shed at a read: a 503 where no response began, and close.
        self.shed = False

    async def receive(self, timeout: float) -> bytes | None:
        """The next bytes (``b""`` at EOF), or None once ``timeout`` passed."""
        with anyio.move_on_after(max(timeout, 0.0)) as scope:
            self.hold.evict = scope.cancel
            try:
                return await self.stream.receive(READ_SIZE)
            except anyio.EndOfStream:
                return b""
            except _GONE as exc:
                raise _Gone from exc
        return None

    async def send(self, data: bytes, timeout: float) -> None:
        """Write ``data``; a client that does not take it within ``timeout`` is gone."""
        with anyio.move_on_after(timeout) as scope:
            try:
                await self.stream.send(data)
            except _GONE as exc:
                raise _Gone from exc
        if scope.cancelled_caught:
            raise _Gone

    async def farewell(self, status: int, reason: str) -> bool:
        """Answer ``status`` if no response has begun; True if it went out.

        The core sends it only where HTTP allows (no response begun on its
        side either) and marks it ``connection: close``; the caller closes.
        """
        if self.answering:
            return False
        self.answering = True
        sent = False
        for action in self.conn.respond(BadRequest(status, reason), now=time.time()):
            if isinstance(action, Send):
                await self.send(action.data, FAREWELL_TIMEOUT)
                sent = True
        return sent

    async def run(self, ssl_context: ssl.SSLContext | None) -> None:
        try:
            await self._run(ssl_context)
        finally:
            self.hold.release()
        if self.shed:
            await self.farewell(503, "server busy with partial requests: try again")

    async def _run(self, ssl_context: ssl.SSLContext | None) -> None:
        limits = self.limits
        if ssl_context is not None:
            with anyio.move_on_after(limits.header_timeout) as scope:
                try:
                    self.stream = await TLSStream.wrap(
                        self.stream,
                        server_side=True,
                        ssl_context=ssl_context,
                        standard_compatible=False,
                    )
                except _GONE as exc:
                    raise _Gone from exc
            if scope.cancelled_caught:
                return  # the handshake took too long
        conn = self.conn
        hold = self.hold
        started: float | None = None  # when the current request's first byte came
        received = 0  # bytes of it read so far
        last = 0  # bytes of the last read, not yet counted against the budget
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                now = anyio.current_time()
                if started is None and conn.request_begun:
                    # A pipelined request, begun in the read that completed
                    # the one before: its head, or its head and part of its
                    # body (timed and counted as partial from now).
                    started = now
                # The core holds part of a request while one has begun.
                if (started is not None or hold.held) and not hold.after_read(
                    last, answered=False, partial=started is not None
                ):
                    self.shed = True  # run answers 503
                    return
                last = 0
                # Asked for (Expect: 100-continue), before its body comes.
                if started is not None and (early := conn.interim_response()):
                    await self.send(early, limits.idle_timeout)
                if started is None:
                    deadline = now + limits.idle_timeout
                else:
                    deadline = limits.request_deadline(
                        started, received, in_head=conn.waiting_for_head
                    )
                data = await self.receive(deadline - now)
                if data is None:
                    if hold.shed:  # by another connection's read
                        self.shed = True
                        return
                    if started is None:
                        return  # idle: RFC 9112 section 9.5 lets a server close it
                    # RFC 9110 section 15.5.9: 408, the server "did not
                    # receive a complete request message within the time that
                    # it was prepared to wait".
                    self.stats.timed_out += 1
                    await self.farewell(408, "request not received in time")
                    return
                if data and started is None:
                    started = anyio.current_time()
                received += len(data)
                last = len(data)
                conn.receive_data(data)
                # Not held across the next wait beside the core's copy: a
                # read per connection, uncounted by the budget.
                del data
                continue
            if event is PAUSED:
                return
            started = None
            received = 0
            # Whole: no longer partial while it is answered.  A next request
            # begun in the same read is counted at the next NEED_DATA, with
            # that read's bytes (``last``), an upper bound on its part.
            hold.release()
            for action in conn.respond(event, now=time.time()):
                if isinstance(action, Send):
                    self.answering = True
                    # A client that stops reading is dropped, not waited for.
                    await self.send(action.data, limits.idle_timeout)
                elif isinstance(action, Pause):
                    await anyio.sleep(action.seconds)
                else:
                    return
            self.answering = False  # that response is whole; the next may begin


async def serve_connection(
    stream: ByteStream,
    service: Service,
    ssl_context: ssl.SSLContext | None,
    limits: Limits,
    stats: ServerStats,
    *,
    budget: PartialBudget,
) -> None:
    """Serve one accepted connection until it ends; the caller closes ``stream``.

    Raises nothing but cancellation: a disconnect ends it quietly, an
    exception (a bug) ends it with a 500 where one can still be sent, one log
    line, and a count in ``stats.internal_errors``.  Its partial requests
    count against ``budget``, the server's (see ``.budget``).
    """
    connection = _Connection(stream, service, limits, stats, budget)
    try:
        await connection.run(ssl_context)
    except _Gone:
        return
    except Exception as error:
        stats.internal_errors += 1
        number = stats.internal_errors  # others may fail while this one answers
        began = connection.answering
        answered = False
        # The same bug may strike again while answering: then just close.
        with suppress(Exception):
            answered = await connection.farewell(500, "internal server error")
        if answered:
            outcome = "answered 500 and closed it"
        elif began:
            outcome = "closed it mid-response"
        else:
            outcome = "closed it"
        _logger.error(
            "internal error #%d on a connection from %s: %s at %s; %s",
            number,
            _field(_peer_name(stream)),
            _field(type(error).__qualname__),
            _field(_where(error)),
            outcome,
        )


async def serve_contained(
    serve: Callable[[], Awaitable[None]],
    close: Callable[[], Awaitable[None]],
    peer: Callable[[], str],
    *,
    max_connections: int,
    stats: ServerStats,
) -> None:
    """One accepted connection under the listener's rules (see
    :func:`serve_listener`): ``serve`` it within the connection cap, contain
    what it raises, then ``close`` it; ``peer`` names it in a log line."""
    try:
        if stats.active >= max_connections:
            stats.refused += 1
            return
        stats.active += 1
        stats.accepted += 1
        try:
            await serve()
        except _GONE:
            pass
        except Exception as error:
            stats.internal_errors += 1
            _logger.error(
                "internal error #%d on a connection from %s: %s at %s; closed it",
                stats.internal_errors,
                _field(peer()),
                _field(type(error).__qualname__),
                _field(_where(error)),
            )
        finally:
            # The slot is free before the client can see the close.
            stats.active -= 1
    finally:
        # Closing cannot stop the listener either.
        with suppress(Exception):
            await close()


async def serve_listener(
    handler: Callable[[ByteStream], Awaitable[None]],
    *,
    host: str,
    port: int,
    max_connections: int,
    stats: ServerStats,
    scheme: str = "http",
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """The accept loop every server here shares: listen, hand each connection
    to ``handler`` within the connection cap, contain what it raises.

    Past ``max_connections`` connections, a new one is closed unanswered.
    ``handler`` need not contain errors itself: a disconnect ends its
    connection quietly, any other exception (a bug) ends it with one log line
    and a count in ``stats.internal_errors``, never the listener.
    ``task_status.started`` gets the URL once connections are accepted.
    """
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)

    async def handle(stream: ByteStream) -> None:
        await serve_contained(
            lambda: handler(stream),
            lambda: anyio.aclose_forcefully(stream),
            lambda: _peer_name(stream),
            max_connections=max_connections,
            stats=stats,
        )

    async def accept_from(one: SocketListener) -> None:
        # anyio's listener.serve() ends (and the server with it) at the
        # first accept that fails: a client holding as many connections as
        # the process has file descriptors stopped every server.
        while True:
            try:
                stream = await one.accept()
            except OSError as error:
                _accept_failed(stats, error, ACCEPT_RETRY_DELAY)
                await anyio.sleep(ACCEPT_RETRY_DELAY)
                continue
            group.start_soon(handle, stream)

    async with listener, anyio.create_task_group() as group:
        bound = listener.extra(SocketAttribute.local_port)
        shown = f"[{host}]" if ":" in host else host
        task_status.started(f"{scheme}://{shown}:{bound}")
        # One loop per address the host resolved to (IPv4 and IPv6).
        for one in listener.listeners:
            assert isinstance(one, SocketListener)  # what create_tcp_listener makes
            group.start_soon(accept_from, one)


def _accept_failed(stats: ServerStats, error: OSError, retry: float) -> None:
    # Counted; logged in one line at the 1st, 2nd, 4th, 8th... failure: a
    # listener out of descriptors fails at every retry, and again between
    # runs of failures as connections come and go: k failures, at most
    # log2(k) + 1 lines.
    stats.accept_errors += 1
    count = stats.accept_errors
    if count & (count - 1) == 0:
        _logger.error(
            "cannot accept connections: %s (failure %d); retrying every %g s",
            _field(os.strerror(error.errno) if error.errno else type(error).__name__),
            count,
            retry,
        )


#: What asyncio's listener tells its loop's exception handler when an accept
#: failed for want of a resource (asyncio/selector_events.py); it then stops
#: accepting for a second (asyncio's own ACCEPT_RETRY_DELAY).
_ASYNCIO_ACCEPT_FAILED = "socket.accept() out of system resource"


@contextmanager
def asyncio_accept_errors(stats: ServerStats) -> Iterator[None]:
    """For a server on asyncio's own listener (the recording proxy): a failed
    accept, which asyncio hands its loop's exception handler and the default
    handler prints with a traceback, again at every retry (a full stderr pipe
    then blocked the whole loop), is counted and logged in one line now and
    then, as :func:`serve_listener` does.  Other contexts go to the handler
    the loop had, which is put back at the end."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if context.get("message") == _ASYNCIO_ACCEPT_FAILED and isinstance(error, OSError):
            _accept_failed(stats, error, 1.0)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    try:
        yield
    finally:
        loop.set_exception_handler(previous)


@asynccontextmanager
async def in_background(
    start: Callable[[TaskStatus[str]], Coroutine[Any, Any, object]],
) -> AsyncIterator[str]:
    """Run a server task (``start``, which reports its URL through its task
    status) in this event loop while the block runs; yield the URL.

    The server stops when the block ends.  An error in the caller's block,
    or the server's failure to start (an address in use), reaches the caller
    as itself, not wrapped in the task group's ExceptionGroup: it is held
    until the server task is gone, then raised.
    """
    failure: BaseException | None = None
    async with anyio.create_task_group() as group:
        try:
            url: str | None = await group.start(start)
        except Exception as exc:
            failure, url = exc, None
        if url is not None:
            try:
                yield url
            except BaseException as exc:
                failure = exc
            finally:
                group.cancel_scope.cancel()
    if failure is not None:
        raise failure
