"""Recording, sans IO: bytes a client sent and received in, a cassette out.

A recording transport tees every write and read through a :class:`Recorder`
while the client sees each chunk as it arrives.  The recorder splits what
the client wrote into requests (h11, server side) and files each read under
the request it answers; at the end it parses each response once more for the
stored head and events.  Times are offsets in seconds, given by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

import h11

from .._errors import InvalidHTTP, LocalProtocolError, RemoteProtocolError
from .._http11 import next_h11_event, response_parser
from .._version import __version__
from ..sse._media import is_event_stream
from ..sse._parser import SSEParser
from ._checks import is_status
from ._format import (
    Cassette,
    Interaction,
    RecordedChunk,
    RecordedRequest,
    RecordedResponse,
)
from ._profiles import GPTALK, Profile
from ._redact import redact as apply_redaction
from ._request_reader import RequestReader
from ._response import ReadResponse, read_response

__all__ = ["ChunkStore", "Recorder"]

#: Cap on one recorded request (head and body), in bytes: GPTalk requests
#: are small, and the recorder holds a request until it is complete.
MAX_RECORDED_REQUEST = 2 * 1024 * 1024

_LINE_END = re.compile(rb"[\r\n]")

#: Request headers meant for a proxy, not the service (RFC 9110 section
#: 11.7.2: Proxy-Authorization is consumed by the proxy; Proxy-Connection is
#: its legacy twin).  A proxy is transport: a replay goes to no proxy, so these
#: are not part of the recorded request.
PROXY_HEADERS = frozenset({b"proxy-authorization", b"proxy-connection"})


def origin_form(target: bytes) -> bytes:
    """The origin-form of a request target (RFC 9112 section 3.2.1).

    Through an HTTP proxy, a client sends the absolute-form
    (``http://host/path?query``, RFC 9112 section 3.2.2); the service would have
    seen ``/path?query``.  The cassette keeps what the service sees, so the same
    chat recorded with or without a proxy replays alike.
    """
    if target[:1] == b"/" or not target.lower().startswith((b"http://", b"https://")):
        return target  # origin-form already (the usual case: no copy lowered)
    rest = target.partition(b"://")[2]
    cut = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=len(rest))
    path = rest[cut:]
    return path if path.startswith(b"/") else b"/" + path


class ChunkStore(Protocol):
    """Where a :class:`Recorder` keeps the bytes it recorded until the
    cassette is built: the IO side's choice (a file, say), so a long
    recording need not stay in memory.  Keys are the store's own."""

    def put(self, data: bytes) -> int:
        """Keep ``data``; returns the key that gets it back."""
        ...

    def get(self, key: int) -> bytes:
        """The bytes kept under ``key``."""
        ...


class _MemoryStore:
    """The default :class:`ChunkStore`: the bytes stay in memory."""

    __slots__ = ("_chunks",)

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def put(self, data: bytes) -> int:
        self._chunks.append(data)
        return len(self._chunks) - 1

    def get(self, key: int) -> bytes:
        return self._chunks[key]


class _Exchange:
    """One request and what came back for it.

    The request is kept as it was sent (bytes) and read into a
    :class:`RecordedRequest` only when the cassette is built: decoding every
    header as each request went by was about a fifth of the recording
    proxy's work on a request's way to the upstream, for a cassette built
    once.
    """

    __slots__ = (
        "_headers",
        "_t",
        "body",
        "chunks",
        "client_closed",
        "connection",
        "end",
        "method",
        "open_at_end",
        "target",
    )

    def __init__(  # noqa: PLR0917 (positional: made per request, no dict of keywords)
        self,
        connection: int,
        method: str,
        target: str,
        headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...],
        body: bytes,
        t: float,
    ) -> None:
        self.connection = connection
        self.method = method
        self.target = target
        self._headers = headers
        self.body = body
        self._t = t
        # (t, the store's key) of each chunk received; t is rounded as the
        # cassette keeps it (to the microsecond) when the cassette is built,
        # not per read (a rounding took as long as the rest of filing one).
        self.chunks: list[tuple[float, int]] = []
        self.end = "complete"
        # The recording ended with the connection still open (see
        # Recorder.recording_ended): a response cut short is then "stopped".
        self.open_at_end = False
        # The client closed its side first (see Recorder.client_closed): a
        # close of the server after a whole response answered that close.
        self.client_closed = False

    def request(self) -> RecordedRequest:
        """The request, as the cassette keeps it."""
        return RecordedRequest(
            t=round(self._t, 6),
            method=self.method,
            target=self.target,
            headers=tuple(
                (n.decode("latin-1"), v.decode("latin-1"))
                for n, v in self._headers
                if n.lower() not in PROXY_HEADERS
            ),
            body=self.body,
        )


class _Connection:
    """One recorded connection: a request parser and an event counter."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.requests = RequestReader(MAX_RECORDED_REQUEST)
        self.current: _Exchange | None = None
        # Counting events for max_events: h11 (client side) and an SSE parser.
        self.responses: h11.Connection | None = None
        self.events = 0
        self.parser: SSEParser | None = None


class Recorder:
    """Builds a :class:`Cassette` from a client's traffic.

    Args:
        origin: the service URL, kept in the cassette.
        max_events: stop recording a stream after this many SSE events
            (:meth:`should_stop` tells the transport), for endless streams.
        profile: the API's profile (named in the cassette; it says what
            redaction finds).
        store: where the received bytes are kept until :meth:`cassette`
            (default: in memory).
    """

    def __init__(
        self,
        origin: str,
        *,
        max_events: int | None = None,
        profile: Profile = GPTALK,
        store: ChunkStore | None = None,
    ) -> None:
        self.origin = origin
        self.profile = profile
        self.max_events = max_events
        self.store: ChunkStore = _MemoryStore() if store is None else store
        self._exchanges: list[_Exchange] = []
        self._connections: dict[int, _Connection] = {}

    def open_connection(self) -> int:
        """A new connection; returns its number (from 1)."""
        number = len(self._connections) + 1
        self._connections[number] = _Connection(number)
        return number

    def sent(self, connection: int, data: bytes, t: float) -> None:
        """The client wrote ``data`` at ``t``."""
        conn = self._connections[connection]
        try:
            requests = conn.requests.feed(data, t)
        except InvalidHTTP as exc:
            raise LocalProtocolError(f"the recorded client sent invalid HTTP: {exc}") from None
        for read in requests:
            head = read.head
            self.sent_request(
                connection,
                method=head.method,
                target=head.target,
                headers=head.raw_headers,
                body=read.body,
                t=read.t,
            )

    def sent_request(
        self,
        connection: int,
        *,
        method: bytes,
        target: bytes,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes,
        t: float,
    ) -> None:
        """The client wrote one whole request at ``t``, already parsed: the
        same as :meth:`sent` with its bytes, for a caller that built them
        itself (the recording proxy), so they are not parsed twice.

        A list or tuple of ``headers`` is kept as it is, not copied: it must
        not change afterwards."""
        conn = self._connections[connection]
        # (See above for the headers.)  The method and target are decoded
        # here, so bytes that are not ASCII are refused as they are recorded.
        kept = headers if isinstance(headers, (list, tuple)) else tuple(headers)
        conn.current = _Exchange(
            conn.number, method.decode("ascii"), origin_form(target).decode("ascii"), kept, body, t
        )
        self._exchanges.append(conn.current)
        if self.max_events is not None:
            conn.responses = response_parser(method)
            conn.events = 0
            conn.parser = None

    def received(self, connection: int, data: bytes, t: float) -> int:
        """The client read ``data`` at ``t`` (``b""``: the server closed).

        Returns how many of the bytes belong in the session: all of them,
        unless ``max_events`` is reached inside this read, in which case the
        count ends right after the last allowed event (and the transport
        passes on only those bytes, then ends the stream).
        """
        conn = self._connections[connection]
        if conn.current is None:
            if data:
                raise RemoteProtocolError("the server sent bytes before any request")
            return 0
        if not data:
            conn.current.end = "closed"
            return 0
        keep = len(data)
        if conn.responses is not None:
            keep = self._count(conn, data)
        conn.current.chunks.append((t, self.store.put(bytes(data[:keep]))))
        return keep

    def received_stored(self, connection: int, key: int, t: float) -> None:
        """The client read bytes at ``t`` that the transport put in
        :attr:`store` itself (``key``: the store's, for that one read), for
        a transport that moves a stream's bytes without reading them
        (Linux's ``splice``): the same chunk as :meth:`received` would
        keep.  Only where nothing counts the bytes: not with ``max_events``."""
        conn = self._connections[connection]
        if conn.responses is not None:
            raise LocalProtocolError("bytes counted for max_events must be received, not stored")
        if conn.current is None:
            raise RemoteProtocolError("the server sent bytes before any request")
        conn.current.chunks.append((t, key))

    def _count(self, conn: _Connection, data: bytes) -> int:
        # An event ends at a line end: feed the counter one line end at a time,
        # so the limit cuts exactly after the event that reaches it.
        start = 0
        for match in _LINE_END.finditer(data):
            self._observe(conn, data[start : match.end()])
            start = match.end()
            if self.max_events is not None and conn.events >= self.max_events:
                return start
        if start < len(data):
            self._observe(conn, data[start:])
        return len(data)

    def _observe(self, conn: _Connection, data: bytes) -> None:
        responses = conn.responses
        if responses is None:
            return
        responses.receive_data(data)
        while True:
            try:
                event = next_h11_event(responses)
            except InvalidHTTP:
                conn.responses = None
                return
            if event is h11.NEED_DATA or isinstance(
                event, (h11.EndOfMessage, h11.ConnectionClosed)
            ):
                return
            if isinstance(event, h11.Response):
                if is_event_stream(dict(event.headers).get(b"content-type", b"")):
                    conn.parser = SSEParser()
            elif isinstance(event, h11.Data) and conn.parser is not None:
                try:
                    conn.events += len(conn.parser.feed(event.data))
                except RemoteProtocolError:
                    conn.parser = None

    def should_stop(self, connection: int) -> bool:
        """Whether the stream on ``connection`` reached ``max_events``."""
        conn = self._connections[connection]
        return self.max_events is not None and conn.events >= self.max_events

    def stopped(self, connection: int) -> None:
        """The transport cut the response (event limit or idle timeout)."""
        current = self._connections[connection].current
        if current is not None:
            current.end = "stopped"

    def recording_ended(self, connection: int) -> None:
        """The recording ended with ``connection`` open (a recording proxy
        stopped by a signal or after its chats).  Its last response, if its
        bytes stop short of its end, was cut by the recording, not by the
        server: it is recorded as ``stopped`` (as ``complete``, a replay
        server wrote the bytes and left its client waiting for the rest).
        A response that was whole keeps its ``complete``."""
        current = self._connections[connection].current
        if current is not None:
            current.open_at_end = True

    def client_closed(self, connection: int) -> None:
        """The client closed its side of ``connection`` (a recording proxy
        passes the close on to the server).  A close of the server after
        its last response was whole by its framing is the answer to that,
        not the server's own end of the connection: the response is
        recorded ``complete``, as when the client recorder's own client
        leaves (as ``closed``, a replay server would close where the server
        did not, and a client that keeps its connections for later
        requests would find it closed).  One the close cut short stays
        ``closed``."""
        current = self._connections[connection].current
        if current is not None:
            current.client_closed = True

    def cassette(
        self, *, recorded_at: str, redact: bool = True, secrets: Iterable[str] = ()
    ) -> Cassette:
        """The session so far; redacted unless ``redact`` is False."""
        answered = self._answered()
        items = []
        for exchange in self._exchanges:
            found = answered.get(id(exchange))
            if found is None:
                continue
            chunks, read = found
            end = exchange.end
            if end == "complete" and exchange.open_at_end and read.length is None:
                end = "stopped"  # see recording_ended
            elif end == "closed" and exchange.client_closed and read.length is not None:
                end = "complete"  # see client_closed
            items.append(
                Interaction(
                    connection=exchange.connection,
                    request=exchange.request(),
                    response=RecordedResponse(
                        status=read.status,
                        headers=read.headers,
                        chunks=tuple(chunks),
                        events=tuple(read.events),
                        end=end,
                    ),
                )
            )
        cassette = Cassette(
            interactions=tuple(items),
            recorded_at=recorded_at,
            origin=self.origin,
            redacted=False,
            generator=f"gptalk-proto {__version__}",
            profile=self.profile.name,
        )
        if redact:
            cassette = apply_redaction(cassette, secrets, self.profile)
        return cassette

    def _answered(self) -> dict[int, tuple[list[RecordedChunk], ReadResponse]]:
        """Each answered exchange's chunks and response, by ``id()``.

        Left out: a request never answered, and one whose answer is not an
        HTTP response (an upstream that sent garbage, or closed inside the
        head) -- a cassette holds only responses it can read back (loading
        refuses the others), and one such exchange must not cost the
        session's every other one.
        """
        by_connection: dict[int, list[_Exchange]] = {}
        for exchange in self._exchanges:
            by_connection.setdefault(exchange.connection, []).append(exchange)
        answered: dict[int, tuple[list[RecordedChunk], ReadResponse]] = {}
        for exchanges in by_connection.values():
            chunks = [
                [RecordedChunk(round(t, 6), self.store.get(key)) for t, key in e.chunks]
                for e in exchanges
            ]
            reads = [_read(e, c) for e, c in zip(exchanges, chunks, strict=True)]
            if _pipelined(exchanges, chunks, reads):
                split = _split_by_response(exchanges, chunks)
                if split is not None:
                    chunks = split
                    reads = [_read(e, c) for e, c in zip(exchanges, chunks, strict=True)]
            for exchange, got, read in zip(exchanges, chunks, reads, strict=True):
                if read is not None:
                    answered[id(exchange)] = (got, read)
        return answered


def _read(exchange: _Exchange, chunks: list[RecordedChunk]) -> ReadResponse | None:
    """The exchange's response read back; None if there is none to read."""
    if not chunks:
        return None
    try:
        read = read_response(exchange.method, b"".join(c.data for c in chunks))
    except RemoteProtocolError:
        return None
    # h11 reads any three digits as a status, and loading refuses a cassette
    # with one that is not (is_status): an upstream's "HTTP/1.1 999" kept in
    # it cost the session's every exchange.
    return read if is_status(read.status) else None


def _pipelined(
    exchanges: list[_Exchange],
    chunks: list[list[RecordedChunk]],
    reads: list[ReadResponse | None],
) -> bool:
    """Whether a connection's reads were filed under the wrong requests.

    Reads are filed under the latest request sent, which is right while a
    client waits for each response before its next request.  A client that
    pipelines (RFC 9112 section 9.3) sends the next request first: the
    earlier request then shows no response, or one that does not end where
    its bytes do, although nothing closed the connection under it.
    """
    for exchange, got, read in zip(exchanges[:-1], chunks, reads, strict=False):
        if exchange.end != "complete":
            continue  # cut or closed under it: the next request went on anew
        if read is None or read.length != sum(len(c.data) for c in got):
            return True
    return False


def _split_by_response(
    exchanges: list[_Exchange], chunks: list[list[RecordedChunk]]
) -> list[list[RecordedChunk]] | None:
    """A connection's reads, in order, cut where each response ends.

    Responses come back in the order of the requests (RFC 9112 section 9.3:
    "A server MUST send its responses to those [pipelined] requests in the
    same order that the requests were received"), so each request takes the
    next whole response; the last takes the rest.  A read that holds the end
    of one response and the start of the next is cut in two, both at its
    time.  None when a response (not the last) does not end as its framing
    says: the reads are then left where they were filed.
    """
    reads = [c for got in chunks for c in got]
    wire = b"".join(c.data for c in reads)
    ends = []  # where each chunk ends in ``wire``
    position = 0
    for chunk in reads:
        position += len(chunk.data)
        ends.append(position)
    split: list[list[RecordedChunk]] = []
    offset = 0
    for number, exchange in enumerate(exchanges):
        if number == len(exchanges) - 1:
            stop = len(wire)
        else:
            try:
                read = read_response(exchange.method, wire[offset:])
            except RemoteProtocolError:
                return None
            if read.length is None:
                return None
            stop = offset + read.length
        split.append(_pieces(reads, ends, offset, stop))
        offset = stop
    return split


def _pieces(
    reads: list[RecordedChunk], ends: list[int], start: int, stop: int
) -> list[RecordedChunk]:
    """The reads' bytes from ``start`` to ``stop``, cut at both ends."""
    pieces = []
    begin = 0
    for chunk, end in zip(reads, ends, strict=True):
        low, high = max(start, begin), min(stop, end)
        if low < high:
            pieces.append(RecordedChunk(chunk.t, chunk.data[low - begin : high - begin]))
        begin = end
    return pieces
