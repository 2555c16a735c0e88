"""The recording proxy's IO: :class:`gptalk_proto.ProxyRecorder` behind the
shared accept loop, with the client's connector (TLS verified, upstream
proxies) for the upstream side.

Per client connection, bytes move two ways: client to upstream (requests,
as the core rewrote them), in a loop, and upstream to client, where each
read is written to the client before the next one is read -- the tee the
core asks for.  Both sides are :class:`AsyncByteStream` s: on asyncio,
asyncio's own transports (the listener too), where the tee runs inside the
upstream transport's protocol (see .proxy_tee) and, once it runs, the
client's requests are forwarded inside the client transport's protocol (see
forward_now in _proxy_one); on Linux over plain TCP, where responses are not
followed, that tee moves the bytes with ``splice`` (see .proxy_splice);
elsewhere (trio) anyio's streams, with a pump task.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from functools import partial

import anyio
import anyio.from_thread
import sniffio
from anyio.abc import ByteStream, SocketAttribute, TaskStatus

from gptalk_proto.cassette import ProxyRecorder, ToClient, ToUpstream

from .._async.connector import AsyncConnector
from .._backends.anyio import AnyioStream
from .._backends.asyncio import AsyncioStream, _Protocol
from .._backends.base import AsyncByteStream
from .._backends.heap import keep_heap
from .._backends.trio import TrioStream
from .._exceptions import TransportError
from .budget import SHED_RESPONSE, PartialBudget
from .driver import (
    FAREWELL_TIMEOUT,
    LOGGER_NAME,
    READ_SIZE,
    Limits,
    ServerStats,
    serve_listener,
)
from .proxy_accepted import Accepted
from .proxy_flow import while_it_flows
from .proxy_listener import serve_on_asyncio
from .proxy_splice import can_splice, splice_on_asyncio
from .proxy_tee import tee_on_asyncio
from .refserver import DEFAULT_MAX_CONNECTIONS
from .replay import DEFAULT_LIMITS, RequestClock, _no_delay
from .spool import MAX_QUEUED

#: The proxy's refusals' notes go to the servers' log (stderr, from the CLI).
_logger = logging.getLogger(LOGGER_NAME)

__all__ = ["serve_proxy"]

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

#: Bytes of the block a proxy has freed once as it starts (``keep_heap``, in
#: ``_backends.heap``): above every read buffer of either side (the asyncio
#: transports' 256 KiB, UPSTREAM_READ_SIZE, anyio's 64 KiB), and as
#: large as the reads the spool's writer thread may hold at once
#: (MAX_QUEUED): those are freed by that thread, a few at a time, and with
#: the heap trimmed at twice only 1 MiB its top went back to the kernel and
#: came back as fresh pages (about 5,000 page faults per 64 MB reply).
HEAP_READS_UP_TO = max(4 * UPSTREAM_READ_SIZE, MAX_QUEUED)

#: Whether the proxy tees with ``splice`` where it can (see .proxy_splice);
#: off, every read goes through Python's memory (the portable tee).
SPLICE = True

# A peer gone, broken, or too slow (a read or write past its timeout): its
# connection ends quietly.
_CLIENT_GONE = (TransportError, TimeoutError)


def _bad_gateway(text: str) -> bytes:
    body = json.dumps({"code": 502, "msg": text}).encode()
    return (
        b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
    )


async def _proxy_one(
    client: AsyncByteStream,
    *,
    proxy: ProxyRecorder,
    connector: AsyncConnector,
    clock: Callable[[], float],
    limits: Limits,
    budget: PartialBudget,
    on_chat: Callable[[], None],
) -> None:
    conn = proxy.connection()
    upstream: AsyncByteStream | None = None
    # This connection's partial requests in the server's budget: another
    # connection's read that sheds it cancels its task group (see .budget).
    hold = budget.hold()
    pump_done = anyio.Event()
    # On asyncio's listener, the client's protocol; and what its
    # data_received took for the task (see forward_now).
    accepted = client.parts()[1] if isinstance(client, AsyncioStream) else None
    client_transport = client.parts()[0] if isinstance(client, AsyncioStream) else None
    handed: list[list[ToUpstream | ToClient] | Exception] = []
    # True while a write to the client is under way (trio's pump may wait
    # in one after the core read a response's end): a response has begun,
    # not out whole; shed then, the connection is closed, never told 503.
    writing = False

    def from_upstream(data: bytes) -> bytes:
        # One upstream read (b"": its end) through the core: what goes to
        # the client; on_chat when it ended a chat.
        chats = proxy.chats
        out = conn.upstream_data(data, clock())
        if proxy.chats != chats:
            on_chat()
        return out

    def forward_now(transport: asyncio.Transport, protocol: _Protocol, data: bytes) -> bool:
        """The client's bytes, in its protocol's ``data_received``, while the
        task waits and the upstream is teed: through the core, a request
        straight to the upstream's transport and filed after -- no task, no
        future, no loop iteration per request (waking the task was an
        ``epoll_wait`` and a task step per request).  False: the task takes
        them; a refusal or an error is handed to it."""
        assert isinstance(accepted, Accepted)
        reader, writer = accepted.reader, protocol.writer
        if (
            handed
            or reader is None
            or reader.done()
            or transport.is_closing()
            or (writer is not None and not writer.done())  # the task waits for its drain
        ):
            return False
        try:
            actions = conn.client_data(data, clock(), record_later=True)
        except Exception as exc:  # a bug: the task raises it, to be contained
            handed.append(exc)
            reader.set_exception(_HandedOver())
            return True
        item: list[ToUpstream | ToClient] | Exception = actions
        for action in actions:  # (a loop, not any() of a generator: per request)
            if not isinstance(action, ToUpstream):
                deadlines.answered()  # a refusal: the task writes them all
                break
        else:
            # Without waiting: past the upstream's high-water mark the task takes
            # the next and waits for the drain (one request ahead at most).
            for action in actions:
                transport.write(action.data)
            deadlines.answered() if actions else deadlines.got(data)  # stop or start its clock
            try:
                proxy.record_held()  # the upstream has them: filed now
            except Exception as exc:  # a bug: the task raises it, to be contained
                item = exc
            else:
                incomplete = conn.partial
                if not (incomplete or hold.held) or hold.after_read(
                    len(data), answered=bool(actions), partial=incomplete
                ):
                    if incomplete and (early := conn.interim_response()):
                        assert client_transport is not None  # (asyncio's own)
                        client_transport.write(early)  # (Expect: 100-continue)
                    accepted.arm_read_timer(deadlines.timeout())  # the wait goes on
                    return True
                item = []  # shed: the task ends the connection
        handed.append(item)
        reader.set_exception(_HandedOver())
        return True

    async def pump(upstream: AsyncByteStream, group_scope: anyio.CancelScope) -> None:
        # Upstream to client, one read at a time: each goes out before the
        # next is read (tee, never buffer).
        nonlocal writing
        try:
            if isinstance(upstream, AsyncioStream) and isinstance(client, AsyncioStream):
                # On asyncio, at the protocol level: no task switch per read;
                # the client's requests too, while the tee runs.
                if isinstance(accepted, Accepted):
                    accepted.fast = partial(forward_now, *upstream.parts())
                store = proxy.recorder.store
                try:
                    if (
                        SPLICE
                        and not conn.follows_responses
                        and can_splice(store, upstream, client)
                    ):
                        # Linux: the bytes go by without a copy into Python.
                        await splice_on_asyncio(
                            upstream,
                            client,
                            store,
                            conn.upstream_stored,
                            from_upstream,
                            clock,
                            send_timeout=SEND_TIMEOUT,
                        )
                    else:
                        await tee_on_asyncio(
                            upstream, client, from_upstream, send_timeout=SEND_TIMEOUT
                        )
                finally:
                    if isinstance(accepted, Accepted):
                        accepted.fast = None
                return
            while True:
                try:
                    data = await upstream.receive_some(UPSTREAM_READ_SIZE, None)
                except TransportError:
                    data = b""
                out = from_upstream(data)
                if not data:
                    break
                # A client that does not take it in time is gone.
                writing = True
                await client.send_all(out, SEND_TIMEOUT)
                writing = False
        except _CLIENT_GONE:
            pass
        finally:
            pump_done.set()
            group_scope.cancel()

    try:
        async with anyio.create_task_group() as group:
            hold.evict = group.cancel_scope.cancel
            # On asyncio (its own transports), the loop's clock, read directly.
            on_asyncio = isinstance(client, AsyncioStream)
            now = asyncio.get_running_loop().time if on_asyncio else anyio.current_time
            deadlines = RequestClock(limits, now)
            while True:
                actions: list[ToUpstream | ToClient] | None = None
                try:
                    data = await client.receive_some(READ_SIZE, deadlines.timeout())
                except _HandedOver:  # forward_now read them, for this task to act on
                    item = handed.pop()
                    if isinstance(item, Exception):
                        raise item from None
                    actions, data = item, b""
                except _CLIENT_GONE:
                    data = b""  # gone, idle, or too slow with a request
                if actions is None and not data:
                    # The client is done (or idle): let a response in flight
                    # finish.  A client may half-close once it sent its last
                    # request (RFC 9112 section 9.6 leaves the read side open)
                    # and still wait for the answer.  Where responses are not
                    # followed, nothing says whether one is in flight: the
                    # upstream is told the same (it closes once it answered),
                    # and its answer is passed on until then, within the
                    # idle timeout.
                    if upstream is not None and not conn.follows_responses:
                        conn.client_closed()  # (the upstream's close answers it)
                        if isinstance(upstream, (AsyncioStream, AnyioStream, TrioStream)):
                            await upstream.send_eof()
                        await while_it_flows(pump_done, conn, limits.idle_timeout)
                    elif upstream is not None and conn.pending:
                        await while_it_flows(pump_done, conn, limits.idle_timeout)
                    if upstream is not None and not pump_done.is_set():
                        # The proxy cuts what is still coming: "stopped" if
                        # short, as at its own stop (not "complete").
                        conn.recording_ended()
                    group.cancel_scope.cancel()
                    return
                if actions is None:
                    deadlines.got(data)
                    actions = conn.client_data(data, clock())
                    if actions:
                        deadlines.answered()  # a whole request went on
                for action in actions:
                    if isinstance(action, ToUpstream):
                        if upstream is None:
                            try:
                                upstream = await connector.connect(CONNECT_TIMEOUT)
                            except TransportError as exc:
                                with suppress(*_CLIENT_GONE):
                                    await client.send_all(
                                        _bad_gateway(f"upstream unreachable: {exc}"), SEND_TIMEOUT
                                    )
                                group.cancel_scope.cancel()
                                return
                            group.start_soon(pump, upstream, group.cancel_scope)
                        try:
                            await upstream.send_all(action.data, SEND_TIMEOUT)
                        except _CLIENT_GONE:  # the upstream's, here
                            group.cancel_scope.cancel()
                            return
                    elif isinstance(action, ToClient):
                        if action.note:
                            _logger.warning("%s", action.note)
                        try:
                            writing = True
                            await client.send_all(action.data, SEND_TIMEOUT)
                            writing = False
                        except _CLIENT_GONE:
                            group.cancel_scope.cancel()
                            return
                        if action.close:
                            group.cancel_scope.cancel()
                            return
                # Counted once forwarded: the common request comes whole in
                # one read, and is not.
                incomplete = conn.partial
                if data and (incomplete or hold.held):
                    hold.after_read(len(data), answered=bool(actions), partial=incomplete)
                # Not held across the next wait beside the core's copy: a
                # read per connection, uncounted by the budget.
                del data
                if hold.shed:
                    group.cancel_scope.cancel()
                    return
                # Asked for (Expect: 100-continue) by the request begun; not
                # beside a write to the client (see ProxyConnection).
                if incomplete and not writing and (early := conn.interim_response()):
                    try:
                        await client.send_all(early, SEND_TIMEOUT)
                    except _CLIENT_GONE:
                        group.cancel_scope.cancel()
                        return
    except anyio.get_cancelled_exc_class():
        # The proxy stopped (a signal, --chats N, the end of its block) with
        # this connection open: a response in flight was cut by it.
        conn.recording_ended()
        raise
    finally:
        hold.release()
        if hold.shed:  # (see .budget)
            # A response in flight was cut by the proxy, as by its stop:
            # "stopped" if short (recorded "complete", a replay server wrote
            # its bytes and left its client waiting for the rest).
            conn.recording_ended()
            # A 503 where no response can be in flight, nor a write of one.
            if not writing and (upstream is None or (conn.follows_responses and not conn.pending)):
                with suppress(*_CLIENT_GONE):
                    await client.send_all(SHED_RESPONSE, FAREWELL_TIMEOUT)
        if upstream is not None:
            with anyio.CancelScope(shield=True), suppress(Exception):
                await upstream.aclose()


class _HandedOver(Exception):
    """Fails a client's read wait: its bytes were read in ``data_received``,
    and what came of them is the task's to do (see forward_now)."""


async def _close_after_its_tail(transport: asyncio.Transport) -> None:
    """Close a client's connection so that its tail (up to the high-water
    mark, 64 KiB, and an upstream read) still goes out: an abort dropped it.
    A client that does not take it within SEND_TIMEOUT is cut off; one that
    did is left be (asyncio is done with its transport: ``abort`` raised)."""
    transport.close()
    if transport.get_write_buffer_size():
        asyncio.get_running_loop().call_later(SEND_TIMEOUT, _cut_off, transport)


def _cut_off(transport: asyncio.Transport) -> None:
    if transport.get_write_buffer_size():  # else asyncio is done with it
        transport.abort()


async def serve_proxy(
    recorder: ProxyRecorder,
    connector: AsyncConnector,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: Limits = DEFAULT_LIMITS,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    on_chat: Callable[[], None] = lambda: None,
    stats: ServerStats | None = None,
    task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the recording proxy until cancelled; ``task_status.started``
    gets its URL (set it as ``recorder.url`` too, for the 501 that refuses
    ``CONNECT``).  ``stats`` counts what happened; past
    ``limits.max_partial_bytes`` held in requests not yet complete, across
    connections, the connections holding the most are shed (see .budget)."""
    keep_heap(HEAP_READS_UP_TO)
    origin = time.monotonic()

    def clock() -> float:
        return time.monotonic() - origin

    def handler(stream: AsyncByteStream) -> Awaitable[None]:
        return _proxy_one(
            stream,
            proxy=recorder,
            connector=connector,
            clock=clock,
            limits=limits,
            budget=budget,
            on_chat=on_chat,
        )

    def wrapped(stream: ByteStream) -> Awaitable[None]:
        _no_delay(stream)
        sock = stream.extra(SocketAttribute.raw_socket, None)
        return handler(AnyioStream(stream, "the client", sock))

    if stats is None:
        stats = ServerStats()
    budget = limits.budget(stats)
    # asyncio sets TCP_NODELAY on its TCP transports itself.
    if sniffio.current_async_library() == "asyncio":
        await serve_on_asyncio(
            handler,
            _close_after_its_tail,
            host=host,
            port=port,
            max_connections=max_connections,
            stats=stats,
            task_status=task_status,
        )
    else:
        await serve_listener(
            wrapped,
            host=host,
            port=port,
            max_connections=max_connections,
            stats=stats,
            task_status=task_status,
        )
