"""The recording proxy's upstream-to-client tee on Linux, without the bytes
passing through Python: ``splice(2)`` and ``tee(2)``.

Where it runs: asyncio's selector loop, plain TCP on both sides, a
:class:`~.spool.FileChunkStore`, and responses not followed (without
``--chats``: nothing in the core reads the bytes on the way).  Elsewhere
the tee of .proxy_tee runs, which reads each chunk into a ``bytes``.

Why: for a large reply the proxy's work was the kernel copying each read
three times (into Python's memory, out to the client's socket, into the
spool file's page cache), in the thread that runs the event loop for the
first two.  Here each upstream read is moved into a pipe (``splice``: the
socket's pages, referenced, not copied), the store duplicates the pipe
into one of its own (``tee``: references again) for its writer thread to
move into the file (the one copy, off the event loop's thread), and the
pipe goes to the client's socket (references once more).

That pays for large reads only.  A short chat's reads (a response's head, an
event of a few hundred bytes) are read with one ``read`` into memory, as the
portable tee does: moved into the pipe and read out of it they cost two
system calls where one does, and the store holds small chunks in memory
anyway (see WRITE_HERE_BELOW).  Which way the next read goes is decided by
the last one: after a read of WRITE_HERE_BELOW bytes or more (a large reply
under way) the next are spliced, after a smaller one (a reply's end, a
short chat) read.  Either way a read takes at most the pipe's capacity, so
the reads, and the recorded chunks, are what the kernel had up to the same
size.

Each read is still one recorded chunk, at the time it was read, and goes to
the client, whole, before the next upstream read (the tee the core asks
for).  When the client's socket is full, what it did not take stays in the
pipe and goes on as the socket becomes writable (a writer callback of the
tee's own on it), and no upstream read is made until it all went.  (Read
out of the pipe into a ``bytes`` for the client's transport instead, as it
was, a third of the benchmark's 1 MiB reads cost a copy into fresh memory
and a turn through the transport's buffer.)  Only bytes the client's
transport already holds (what was read before the tee began) go through
it, and until its buffer is empty no upstream read is made either (its
write buffer limits are set to 0 while the tee runs, so that its
``pause_writing``/``resume_writing`` say exactly that).  A client that does
not take the rest within SEND_TIMEOUT is gone, as with the other tee.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from typing import TypeGuard

from .._backends.asyncio import AsyncioStream, _Protocol
from .proxy_tee import _Tee
from .spool import CAN_SPLICE, WRITE_HERE_BELOW, FileChunkStore, make_pipe

__all__ = ["can_splice", "splice_on_asyncio"]

_NONBLOCK = getattr(os, "SPLICE_F_NONBLOCK", 2)


def _plain_socket(transport: asyncio.Transport) -> socket.socket | None:
    """The TCP socket under a plain (not TLS) selector transport, or None."""
    if transport.get_extra_info("sslcontext") is not None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    return sock  # type: ignore[no-any-return]


def can_splice(
    store: object, upstream: AsyncioStream, client: AsyncioStream
) -> TypeGuard[FileChunkStore]:
    """Whether :func:`splice_on_asyncio` can tee these two streams into ``store``."""
    if not CAN_SPLICE or not isinstance(store, FileChunkStore):
        return False
    loop = upstream.parts()[1].loop
    if not isinstance(loop, asyncio.SelectorEventLoop) or not hasattr(loop, "_add_reader"):
        return False
    return _plain_socket(upstream.parts()[0]) is not None and (
        _plain_socket(client.parts()[0]) is not None
    )


def _read_exactly(fd: int, size: int) -> bytes:
    """``size`` bytes a pipe holds, into memory."""
    parts = []
    while size:
        part = os.read(fd, size)
        if not part:  # pragma: no cover - the pipe holds them (we put them there)
            raise OSError("a pipe lost bytes")
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


class _SpliceTee(_Tee):
    """The tee itself: a reader callback on the upstream's socket, and the
    upstream transport's protocol while it runs (its transport reads
    nothing then: it hears only of the connection's loss, after a failed
    write of a request say, which ends the tee).  What it shares with the
    portable tee (the core's part of a read, the client's flow control and
    SEND_TIMEOUT, the ends) is :class:`_Tee`'s; here the upstream's socket
    is read, or not, by a reader of its own instead of its transport."""

    def __init__(  # noqa: PLR0917 (the exchange's parts, as splice_on_asyncio gets them)
        self,
        upstream: asyncio.Transport,
        stream_protocol: _Protocol,
        client: asyncio.Transport,
        client_protocol: _Protocol,
        store: FileChunkStore,
        stored: Callable[[int, float], None],
        from_upstream: Callable[[bytes], bytes],
        clock: Callable[[], float],
        *,
        send_timeout: float,
    ) -> None:
        super().__init__(
            upstream,
            stream_protocol,
            client,
            client_protocol,
            from_upstream,
            send_timeout=send_timeout,
        )
        # The pipe each read goes through to the client (the store tees it):
        # as large as the spool's PIPE_SIZE, the most one read moves, unless
        # the kernel refused (then its default size, 64 KiB).
        self._r1, self._w1, self._capacity = make_pipe()
        self._fds: tuple[int, ...] = (self._r1, self._w1)
        up_sock, client_sock = _plain_socket(upstream), _plain_socket(client)
        assert up_sock is not None
        assert client_sock is not None
        self._up = up_sock.fileno()
        self._out = client_sock.fileno()
        self._store = store
        self._stored = stored
        self._clock = clock
        self._reading = False
        # Whether the next upstream read goes into memory (``read``: the last
        # was small, or none was made yet) or into pipe 1 (``splice``).
        self._small = True
        # Bytes of the last read pipe 1 still holds for the client, whose
        # socket was full (sent as it becomes writable: see _writable).
        self._left = 0
        self._writing = False
        self._ended = False  # the upstream's end came while they wait

    def start(self) -> None:
        """Read the upstream's socket as it becomes readable."""
        if self._reading:
            return
        self._reading = True
        # The loop's own call (its transports' own): add_reader refuses a
        # socket a transport has, and this one's transport is paused.
        self._loop._add_reader(self._up, self._readable)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Stop reading and free the pipes (the exchange is over)."""
        self._stop_reading()
        self._stop_writing()
        self._stop_timer()
        fds, self._fds = self._fds, ()
        for fd in fds:
            os.close(fd)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop._remove_reader(self._up)  # type: ignore[attr-defined]

    def _read_again(self) -> None:
        self.start()

    def _stop_writing(self) -> None:
        if self._writing:
            self._writing = False
            self._loop._remove_writer(self._out)  # type: ignore[attr-defined]

    def _finish(self, error: BaseException | None = None) -> None:
        self._stop_reading()
        self._stop_writing()
        super()._finish(error)

    def _readable(self) -> None:
        if self.done.done():
            return
        if self._small:
            self._read_into_memory()
            return
        try:
            size = os.splice(self._up, self._w1, self._capacity, flags=_NONBLOCK)
        except BlockingIOError:
            return  # woken for nothing
        except OSError:
            size = 0  # reset: the upstream's end, as a read's error is
        if not size:
            self.end()
            return
        t = self._clock()  # the read's time, before its copy to the spool
        try:
            # A small read (a reply's last) is read into memory: the store
            # holds it with its neighbours and writes them together (see
            # WRITE_HERE_BELOW), where a pipe of its own, the writer thread's
            # wake-up and a system call each would cost more than the copy;
            # and the next read goes straight into memory.
            key = (
                self._store.put_teed(self._r1, size, self._capacity)
                if size >= WRITE_HERE_BELOW
                else None
            )
            if key is None:  # small, or the store's pipes are smaller
                self._small = size < WRITE_HERE_BELOW
                data = _read_exactly(self._r1, size)
                self._stored(self._store.put(data), t)
                self._send(data)
                return
            self._stored(key, t)
        except Exception as exc:  # the recorder's (its spool's disk): this connection's end
            self._finish(exc)
            return
        self._splice_out(size)

    def _read_into_memory(self) -> None:
        """One upstream read into a ``bytes`` (one system call, where the
        pipe's way takes two), recorded and sent through the client's
        transport; a large one sends the next reads through the pipe."""
        try:
            # At most the pipe's capacity, as a splice: the same reads.  (Its
            # buffer, shrunk to what came, is the kept heap's: see the proxy's
            # HEAP_READS_UP_TO; no mmap per read.)
            data = os.read(self._up, self._capacity)
        except BlockingIOError:
            return  # woken for nothing
        except OSError:
            data = b""  # reset: the upstream's end, as a read's error is
        if not data:
            self.end()
            return
        t = self._clock()
        if len(data) >= WRITE_HERE_BELOW:
            self._small = False  # a large reply under way: splice from now on
        try:
            self._stored(self._store.put(data), t)
        except Exception as exc:  # the recorder's (its spool's disk): this connection's end
            self._finish(exc)
            return
        self._send(data)

    def _splice_out(self, size: int) -> None:
        """Pipe 1's ``size`` bytes to the client: straight to its socket,
        unless its transport still holds bytes (they go first)."""
        client = self._client
        if client.is_closing():
            # The client is gone.  (Its end of sending alone is not: one that
            # half-closed after its request still reads the answer.)
            self._finish()
            return
        if client.get_write_buffer_size():
            self._send(_read_exactly(self._r1, size))
            return
        self._left = size
        self._splice_left()

    def _splice_left(self) -> None:
        """What pipe 1 holds for the client, into its socket as far as it
        takes; the rest once it is writable again, the upstream not read
        meanwhile (within SEND_TIMEOUT, or the client is gone)."""
        try:
            while self._left:
                self._left -= os.splice(self._r1, self._out, self._left, flags=_NONBLOCK)
        except BlockingIOError:
            pass  # its socket is full
        except OSError:
            self._finish()  # gone (reset, or closed under us)
            return
        if not self._left:
            if self._writing:  # it all went: read the upstream again
                self._stop_writing()
                self._stop_timer()
                if self._ended:
                    self.end()
                else:
                    self._read_again()
            return
        if not self._writing:
            self._wait_for_client()
            self._writing = True
            # The loop's own call (as _add_reader): the transport, its
            # buffer empty, has no writer of its own on the socket.
            self._loop._add_writer(self._out, self._writable)  # type: ignore[attr-defined]

    def end(self) -> None:
        """The upstream's end; while the client has not taken the last read
        (its socket full), once it has: it gets every byte read first."""
        if self._left and not self.done.done():
            self._ended = True
            return
        super().end()

    def _writable(self) -> None:
        if self.done.done():
            return
        if self._client.is_closing():
            self._finish()  # gone meanwhile
            return
        self._splice_left()

    def resume(self) -> None:
        """Read the upstream from now on, unless the client must drain first."""
        if not self.done.done() and self._timer is None:
            self.start()


async def splice_on_asyncio(  # noqa: PLR0917 (the exchange's parts)
    upstream: AsyncioStream,
    client: AsyncioStream,
    store: FileChunkStore,
    stored: Callable[[int, float], None],
    from_upstream: Callable[[bytes], bytes],
    clock: Callable[[], float],
    *,
    send_timeout: float,
) -> None:
    """Tee the upstream's reads to the client and into ``store`` until the
    exchange is over (see the module's docstring; :func:`can_splice` says
    where it runs); raises what the core raised.

    ``stored``: a read the store kept under a key, and the ``clock``'s time
    it was read at, through the core.  ``from_upstream``: a read the
    stream's own protocol made before (or ``b""``: the upstream's end)
    through the core, returning what goes to the client."""
    upstream_transport, stream_protocol = upstream.parts()
    client_transport, client_protocol = client.parts()
    upstream_transport.pause_reading()  # its socket is read here from now on
    limits = client_transport.get_write_buffer_limits()
    # Paused as soon as it holds a byte, resumed once it holds none.
    client_transport.set_write_buffer_limits(high=0)
    tee = _SpliceTee(
        upstream_transport,
        stream_protocol,
        client_transport,
        client_protocol,
        store,
        stored,
        from_upstream,
        clock,
        send_timeout=send_timeout,
    )
    upstream_transport.set_protocol(tee)
    try:
        # What the stream's protocol read before goes first, in order.
        chunks, stream_protocol.chunks = stream_protocol.chunks, []
        for chunk in chunks:
            if tee.done.done():
                break  # (the rest is dropped, as the tee ended)
            tee.data_received(chunk)
        stream_protocol.buffered = 0
        if stream_protocol.eof:
            tee.end()
        tee.resume()
        await tee.done
    finally:
        tee.close()
        if not client_transport.is_closing():
            client_transport.set_write_buffer_limits(high=limits[1], low=limits[0])
