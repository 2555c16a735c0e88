"""The recording proxy's upstream-to-client tee on asyncio, at the protocol
level.

Where both sides are asyncio transports (see :class:`AsyncioStream`), the
upstream connection's protocol is swapped for a :class:`_Tee`: each read the
transport makes is handed to the core and written to the client's transport
inside ``data_received``, before the transport reads again -- the tee the
core asks for, with no task woken, no future and no timer per read.  (The
awaited pump, one ``receive_some`` and one ``send_all`` per read, spent more
of the proxy's CPU on the event loop than on the bytes: a task switch and a
future per read, for the benchmark's 64 MB reply some thousands of reads.)

Flow control is the transports' own: once the client's transport holds more
than its high-water mark, the upstream transport stops reading until it
drains (``pause_reading``/``resume_reading``); a client that does not drain
within SEND_TIMEOUT is gone, as with the pump.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .._backends.asyncio import AsyncioStream, _Protocol

__all__ = ["tee_on_asyncio"]


class _Tee(asyncio.Protocol):
    """The upstream transport's protocol while the tee runs.

    ``done`` gets None when the exchange is over (the upstream closed or
    broke, the client is gone or too slow), or what the core raised.
    The request direction's waits (``pause_writing``, ``connection_lost``)
    still go to the stream's own protocol, which ``send_all`` watches.
    """

    def __init__(
        self,
        upstream: asyncio.Transport,
        stream_protocol: _Protocol,
        client: asyncio.Transport,
        client_protocol: _Protocol,
        from_upstream: Callable[[bytes], bytes],
        *,
        send_timeout: float,
    ) -> None:
        self._upstream = upstream
        self._stream_protocol = stream_protocol
        self._client = client
        self._client_protocol = client_protocol
        self._from_upstream = from_upstream
        self._send_timeout = send_timeout
        self._loop = client_protocol.loop
        self._timer: asyncio.TimerHandle | None = None
        self.done: asyncio.Future[None] = self._loop.create_future()

    def _wait_for_client(self) -> None:
        """No upstream read until the client took what it was sent: within
        SEND_TIMEOUT, or it is gone."""
        self._stop_reading()
        self._timer = self._loop.call_later(self._send_timeout, self._finish)

    def _stop_timer(self) -> None:
        """The wait for the client (if there was one) is over."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _finish(self, error: BaseException | None = None) -> None:
        self._stop_timer()
        if not self.done.done():
            if error is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(error)

    def _record(self, data: bytes) -> bytes | None:
        """The core's part of one read (``b""``: the upstream's end); None
        once it raised (the exchange is over)."""
        try:
            return self._from_upstream(data)
        except Exception as exc:  # the recorder's (its spool's disk): this connection's end
            self._finish(exc)
            return None

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        out = self._record(data)
        if out is not None:
            self._send(out)

    def _send(self, out: bytes) -> None:
        """Bytes for the client through its transport, which sends them as
        the client drains: no upstream read until it did."""
        client = self._client
        if client.is_closing():
            # The client is gone.  (Its end of sending alone is not: one that
            # half-closed after its request still reads the answer.)
            self._finish()
            return
        client.write(out)
        writer = self._client_protocol.writer
        if self._timer is None and writer is not None and not writer.done():
            # Past the client's high-water mark: read no more until it drains.
            self._wait_for_client()
            writer.add_done_callback(self._drained)

    def _drained(self, _: asyncio.Future[None]) -> None:
        if self.done.done():
            return
        self._stop_timer()
        if self._client.is_closing():
            self._finish()  # drained because it closed
            return
        self._read_again()

    def _stop_reading(self) -> None:
        """Read no more from the upstream (until :meth:`_read_again`)."""
        self._upstream.pause_reading()

    def _read_again(self) -> None:
        self._upstream.resume_reading()

    def eof_received(self) -> bool:
        self.end()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.end()
        self._stream_protocol.connection_lost(exc)

    def end(self) -> None:
        """The upstream's end (closed, broken, or cut off): the core hears it."""
        if not self.done.done() and self._record(b"") is not None:
            self._finish()

    def pause_writing(self) -> None:
        self._stream_protocol.pause_writing()

    def resume_writing(self) -> None:
        self._stream_protocol.resume_writing()


async def tee_on_asyncio(
    upstream: AsyncioStream,
    client: AsyncioStream,
    from_upstream: Callable[[bytes], bytes],
    *,
    send_timeout: float,
) -> None:
    """Tee the upstream's reads to the client until the exchange is over
    (see the module's docstring); raises what the core raised.

    ``from_upstream``: one upstream read (``b""``: its end) through the
    core, returning what goes to the client (the pump's own step)."""
    upstream_transport, stream_protocol = upstream.parts()
    client_transport, client_protocol = client.parts()
    tee = _Tee(
        upstream_transport,
        stream_protocol,
        client_transport,
        client_protocol,
        from_upstream,
        send_timeout=send_timeout,
    )
    upstream_transport.set_protocol(tee)
    if stream_protocol.paused:  # the tee pauses it again if the client is full
        stream_protocol.paused = False
        upstream_transport.resume_reading()
    # What the stream's protocol read before the swap goes first, in order
    # (nothing runs in between: the transport cannot read meanwhile).
    chunks, stream_protocol.chunks = stream_protocol.chunks, []
    for chunk in chunks:
        tee.data_received(chunk)
    stream_protocol.buffered = 0
    if stream_protocol.eof:
        tee.end()
    await tee.done
