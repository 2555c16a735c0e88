"""HTTP/1.1 for the core, over h11: the one boundary where h11's errors are caught.

* :func:`next_h11_event` / :func:`send_h11`: h11's errors re-typed, once.
* :func:`response_parser`: an h11 connection ready to parse the response to a
  request (the recorder, the cassette reader and the client use it).
* :func:`write_request`: a request's bytes, as h11 writes them.
* :class:`ResponseReader`: a client connection's responses, with its own
  small state enum (:class:`ReaderState`) and no private h11 name.
* :class:`ChunkedDecoder` (in :mod:`._chunked`, re-exported): a chunked-body
  decoder (RFC 9112 section 7.1) for the event stream's body.

Plain response heads are read by :mod:`._head` (exactly as h11 would, or
not at all), and their ``Content-Length`` bodies counted here; h11 reads
every other head, and the body of any response whose head it read unless
that body is chunked.  Each response h11 reads gets a fresh h11 parser, so
h11 is never cycled by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import NamedTuple, Union

import h11

from ._chunked import DEFAULT_MAX_CHUNK_LINE, ChunkedDecoder
from ._errors import InvalidHTTP, LocalProtocolError, RemoteProtocolError, escaped
from ._head import CHUNKED, PlainHead, read_head, says_close
from ._util import NEED_DATA, NeedData

__all__ = [
    "DEFAULT_MAX_CHUNK_LINE",
    "SERVER_CLOSED",
    "ChunkedDecoder",
    "H11Event",
    "ReaderState",
    "ResponseHead",
    "ResponseReader",
    "continue_if_asked",
    "next_h11_event",
    "response_parser",
    "send_h11",
    "write_request",
]


#: What h11's ``next_event()`` gives.
H11Event = Union[h11.Event, type[h11.NEED_DATA], type[h11.PAUSED]]  # noqa: UP007 - runtime alias


def next_h11_event(conn: h11.Connection) -> H11Event:
    """``conn.next_event()``, with h11's error re-typed as :class:`InvalidHTTP`."""
    try:
        return conn.next_event()
    except h11.RemoteProtocolError as exc:
        # h11 quotes the offending line whole: a request line of 2 MB would
        # be a message of 2 MB, so it is cut (h11 escapes it already).
        raise InvalidHTTP(escaped(str(exc)), status_hint=exc.error_status_hint) from None


#: The interim answer to ``Expect: 100-continue`` (RFC 9110 section
#: 10.1.1): ``HTTP/1.1 100 Continue`` and a blank line.
_CONTINUE = h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")


def continue_if_asked(conn: h11.Connection) -> bytes:
    """``HTTP/1.1 100 Continue`` when the client of a server's ``conn``
    waits for one (``Expect: 100-continue`` in an HTTP/1.1 head, none of
    the body come yet), once: sent through ``conn``, which then knows the
    client was answered; else ``b""``."""
    if not conn.they_are_waiting_for_100_continue:
        return b""
    return conn.send(_CONTINUE) or b""


def send_h11(conn: h11.Connection, event: h11.Response | h11.Data | h11.EndOfMessage) -> bytes:
    """``conn.send(event)``, with h11's error re-typed as :class:`LocalProtocolError`."""
    try:
        return conn.send(event) or b""
    except h11.LocalProtocolError as exc:
        raise LocalProtocolError(str(exc)) from None


def response_parser(
    method: str | bytes, *, close: bool = False, max_head_size: int = DEFAULT_MAX_CHUNK_LINE
) -> h11.Connection:
    """An h11 client connection that has "sent" a ``method`` request (with
    ``Connection: close`` if ``close``), ready to parse the response to it.

    What a response's framing depends on is the request's method (a HEAD
    answer has no body) and whether the connection closes after it; the rest
    of the request is written elsewhere (:func:`write_request`), so h11 is
    shown a minimal one through its public API.
    """
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head_size)
    headers = [(b"host", b"x"), (b"connection", b"close")] if close else [(b"host", b"x")]
    conn.send(h11.Request(method=method, target=b"/", headers=headers))
    conn.send(h11.EndOfMessage())
    return conn


def write_request(method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """A request's bytes, byte for byte as h11 writes them (a differential
    test holds this to h11).

    Every header value must have passed :func:`~gptalk_proto.check_header_value`
    (no control characters, latin-1 only) and every name
    :func:`~gptalk_proto.check_header_name`: the values are not checked again
    here, which is why this is cheaper than h11's writer.
    """
    if not headers:
        return f"{method} {target} HTTP/1.1\r\n\r\n".encode("latin-1") + body
    # ": ".join of each (name, value) pair, then CRLF between them: the same
    # text as one f-string per field, joined in C without a Python step each.
    fields = "\r\n".join(map(": ".join, headers))
    return f"{method} {target} HTTP/1.1\r\n{fields}\r\n\r\n".encode("latin-1") + body


# -- the client's response reader -----------------------------------------------------


#: The message of the :class:`InvalidHTTP` a reader raises when the peer's EOF
#: cut a response short (any other is the peer's HTTP being invalid).
SERVER_CLOSED = "the server closed the connection"


class ReaderState(Enum):
    """Where a client connection's response reader is."""

    #: No request out: bytes that arrive now are kept for the next response.
    IDLE = "IDLE"
    #: A request is out and its response's head is read: by :mod:`._head`
    #: if the head is plain, else by h11, which then reads the body too
    #: unless the body is chunked.
    HEAD = "HEAD"
    #: A body of known length (``Content-Length``), counted here.
    LENGTH = "LENGTH"
    #: A chunked body, read by :class:`ChunkedDecoder`.
    CHUNKED = "CHUNKED"
    #: The connection carries no more responses (closed, or will close).
    DONE = "DONE"


# The states as module constants: before Python 3.12 an Enum member read off
# its class (``ReaderState.IDLE``) goes through EnumType.__getattr__'s slow
# attribute hook, about ten times a global's cost, on every call here.
_IDLE = ReaderState.IDLE
_HEAD = ReaderState.HEAD
_LENGTH = ReaderState.LENGTH
_CHUNKED = ReaderState.CHUNKED
_DONE = ReaderState.DONE

#: Named tuples built with ``tuple.__new__``: the same tuple as the class's
#: call, without its generated ``__new__`` (a Python frame) per request/head.
_new = tuple.__new__


class ResponseHead(NamedTuple):
    """A final response's status and headers (lowercase bytes names)."""

    status: int
    headers: Sequence[tuple[bytes, bytes]]


class ResponseReader:
    """One client connection's responses, from bytes: heads, body bytes, ends.

    :meth:`expect` says a request went out; :meth:`next_event` then gives a
    :class:`ResponseHead`, body bytes, ``b""`` when the body ended, or
    ``NEED_DATA``; it raises :class:`InvalidHTTP` (``closed`` tells whether
    the peer's EOF is why).  After a response, the reader is ``IDLE`` again if
    both sides keep the connection, ``DONE`` otherwise.

    A plain head is read by :func:`._head.read_head`, which answers only as
    h11 would; any other head gets a fresh h11 parser (:func:`response_parser`),
    so h11 is never cycled nor told of a request through private names.  A
    chunked body is decoded by :class:`ChunkedDecoder` (h11 costs more per
    chunk than the rest of an event).
    """

    def __init__(self, *, max_head_size: int) -> None:
        self._max_head_size = max_head_size
        self.state: ReaderState = _IDLE
        #: The peer closed its side (``receive_data(b"")``).
        self.closed = False
        self._parser: h11.Connection | None = None
        # A request out whose response's head is not read yet, and no h11
        # parser made for it: (method, connection-close).
        self._expected: tuple[bytes, bool] | None = None
        self._close_requested = False
        # The request's method frames its answer its own way: h11 reads all of it.
        self._h11_framing = False
        # How many times read_head found the head unfinished (see _plain_head).
        self._head_waits = 0
        # Bytes not yet handed to a parser or decoder: between responses, or
        # before the deferred parser exists, or for the chunked decoder.  At
        # most what one read brings, or the tail of one response (the peer
        # cannot grow it: it is handed over at the next next_event()).
        self._unread: list[bytes] = []
        self._decoder: ChunkedDecoder | None = None
        # Body bytes still due in the LENGTH state.
        self._left = 0
        # The chunked body ended in the read whose bytes went out last.
        self._body_ended = False
        self._keep_alive = True
        # An error found after some body bytes, raised at the next call.
        self._error: InvalidHTTP | None = None
        #: Whether any byte of the current response arrived.
        self.answered = False

    @property
    def reusable(self) -> bool:
        """Idle, open, and no stray bytes from the peer."""
        return self.state is _IDLE and not self.closed and not self._unread

    def expect(self, method: str, *, close: bool) -> None:
        """A ``method`` request went out (``close``: it said ``Connection: close``).

        An h11 parser is built only for a head that is not plain (or, for
        HEAD and CONNECT, whose answers h11 frames its own way, at
        :meth:`request_sent`), so the request goes on the wire first.
        """
        if self.state is not _IDLE:
            raise LocalProtocolError("a request is already out on this connection")
        self._expected = (method.encode("ascii"), close)
        self._h11_framing = self._expected[0] in _H11_METHODS
        self._close_requested = close
        self._head_waits = 0
        self.answered = bool(self._unread)
        self.state = _HEAD

    def request_sent(self) -> None:
        """Build what reading the response needs now (while the server works)
        rather than when its bytes arrive: an h11 parser for HEAD and CONNECT,
        nothing for the rest."""
        if self._expected is not None and self._h11_framing:
            self._start_parser()

    @property
    def waiting(self) -> bool:
        """Whether a response is due and nothing of it is in hand: no byte,
        no EOF, no error held (next_event would say ``NEED_DATA``).  False
        whenever h11 reads the head (HEAD, CONNECT): its buffer is its own."""
        return (
            self.state is _HEAD
            and self._parser is None
            and not self._unread
            and not self.closed
            and self._error is None
        )

    def _start_parser(self) -> None:
        assert self._expected is not None
        method, close = self._expected
        self._expected = None
        self._parser = parser = response_parser(
            method, close=close, max_head_size=self._max_head_size
        )
        if self._unread:
            parser.receive_data(b"".join(self._unread))
            self._unread = []
        if self.closed:
            parser.receive_data(b"")

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer; ``b""`` means it closed the connection."""
        if self.closed:
            if data:
                raise LocalProtocolError("receive_data() after EOF")
            return
        if data:
            self.answered = self.answered or self.state is not _IDLE
        else:
            self.closed = True
        if self._parser is not None:
            self._parser.receive_data(data)
        elif data:
            self._unread.append(data)

    def next_event(self) -> ResponseHead | bytes | NeedData:
        """The next head, body bytes (``b""``: the body ended), or ``NEED_DATA``."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        state = self.state
        if state is _CHUNKED:
            return self._next_chunked()
        if state is _LENGTH:
            return self._next_length()
        if state is not _HEAD:
            return NEED_DATA
        if self._parser is None:
            plain = self._plain_head()
            if plain is not None:
                return plain
            self._start_parser()  # not plain: h11 reads these same bytes
        parser = self._parser
        assert parser is not None
        while True:
            try:
                event = next_h11_event(parser)
            except InvalidHTTP:
                self._finish(keep_alive=False)
                if self.closed:
                    raise InvalidHTTP(SERVER_CLOSED) from None
                raise
            event_type = type(event)
            if event_type is h11.Data:
                assert isinstance(event, h11.Data)
                return bytes(event.data)
            if event_type is h11.Response:
                assert isinstance(event, h11.Response)
                # HEAD/CONNECT answers, 204 and 304: h11's own framing (no body).
                if (
                    not self._h11_framing
                    and event.status_code not in _BODILESS
                    and _is_chunked(event)
                ):
                    self._start_chunked(event, parser)
                return _new(ResponseHead, (event.status_code, event.headers))
            if event_type is h11.EndOfMessage:
                # Both sides keep the connection (h11 decided from the heads).
                keep = parser.our_state is h11.DONE and parser.their_state is h11.DONE
                self._finish(keep_alive=keep, leftover=parser.trailing_data[0])
                return b""
            if event_type is h11.ConnectionClosed:
                self._finish(keep_alive=False)
                raise InvalidHTTP(SERVER_CLOSED)
            if event is h11.NEED_DATA:
                return NEED_DATA
            # InformationalResponse (1xx): not final, read on.

    def _plain_head(self) -> ResponseHead | NeedData | None:
        # The head by read_head, if it answers (see _head); None: h11's turn.
        assert self._expected is not None
        close = self._expected[1]
        if self.closed or self._h11_framing:
            return None
        unread = self._unread
        if not unread:
            return NEED_DATA
        data = unread[0] if len(unread) == 1 else b"".join(unread)
        head = read_head(data, self._max_head_size)
        if head is None:
            return None
        if head is NEED_DATA:
            self._head_waits += 1
            if self._head_waits > _MAX_HEAD_WAITS:
                # A head in many pieces: each wait joined and searched all of
                # it again (quadratic: a 64 KiB head sent a byte at a time
                # cost seconds of CPU); h11 keeps its place and reads these
                # same bytes in linear time.
                self._unread = [data]
                return None
            self._unread = [data]
            return NEED_DATA
        assert isinstance(head, PlainHead)
        self._expected = None
        rest = data[head.end :]
        self._unread = [rest] if rest else []
        self._keep_alive = head.keep_alive and not close
        if head.length == CHUNKED:
            self.state = _CHUNKED
            self._decoder = ChunkedDecoder(max_line=self._max_head_size)
        else:
            self.state = _LENGTH
            self._left = head.length
        return _new(ResponseHead, (head.status, head.headers))

    def _next_length(self) -> bytes | NeedData:
        # A Content-Length body, as h11 reads one: the bytes as they come,
        # then the end (b"") once all arrived; bytes past it are the next
        # response's.
        left = self._left
        unread = self._unread
        if not left:
            self._finish(
                keep_alive=self._keep_alive and not self.closed,
                leftover=unread[0] if len(unread) == 1 else b"".join(unread),
            )
            return b""
        if not unread:
            if self.closed:
                self._finish(keep_alive=False)
                raise InvalidHTTP(SERVER_CLOSED)
            return NEED_DATA
        data = unread[0] if len(unread) == 1 else b"".join(unread)
        if len(data) > left:
            self._unread = [data[left:]]
            data = data[:left]
        else:
            self._unread = []
        self._left = left - len(data)
        return data

    def _start_chunked(self, response: h11.Response, parser: h11.Connection) -> None:
        # From here the body is ours: h11 has read the head; what it buffered
        # past it is the body's first bytes.
        self.state = _CHUNKED
        self._decoder = ChunkedDecoder(max_line=self._max_head_size)
        leftover = parser.trailing_data[0]
        self._unread = [leftover] if leftover else []
        self._parser = None
        # h11's rule: the connection is kept unless either side said
        # "Connection: close" or the response is HTTP/1.0.
        self._keep_alive = (
            response.http_version >= b"1.1"
            and not says_close(response.headers)
            and not self._close_requested
        )

    def _next_chunked(self) -> bytes | NeedData:
        decoder = self._decoder
        assert decoder is not None
        if self._body_ended:
            # The last body bytes went out at the previous call: now the end.
            self._body_ended = False
            self._end_chunked(decoder)
            return b""
        while True:
            if not self._unread:
                if not self.closed:
                    return NEED_DATA
                self._finish(keep_alive=False)
                try:
                    decoder.eof()
                except RemoteProtocolError:
                    raise InvalidHTTP(SERVER_CLOSED) from None
                return b""  # pragma: no cover - not done (see above), so eof() raised
            data = self._unread[0] if len(self._unread) == 1 else b"".join(self._unread)
            self._unread = []
            try:
                body = decoder.feed(data)
            except RemoteProtocolError as exc:
                self._finish(keep_alive=False)
                error = InvalidHTTP(str(exc))
                # The body bytes before the error still count (the decoder
                # hands them over on the exception): first them, then it.
                partial: bytes = getattr(exc, "partial", b"")
                if partial:
                    self._error = error
                    return partial
                raise error from None
            if decoder.done:
                if body:
                    self._body_ended = True
                    return body
                self._end_chunked(decoder)
                return b""
            if body:
                return body

    def _end_chunked(self, decoder: ChunkedDecoder) -> None:
        # h11 would not keep a connection the peer closed; the decoder's rule
        # is the same (see _start_chunked).
        keep = self._keep_alive and not self.closed
        self._finish(keep_alive=keep, leftover=bytes(decoder.leftover))

    def _finish(self, *, keep_alive: bool, leftover: bytes = b"") -> None:
        self._parser = None
        self._decoder = None
        self._expected = None
        self._body_ended = False
        self._left = 0
        if keep_alive and not self.closed:
            self.state = _IDLE
            self._unread = [leftover] if leftover else []
        else:
            self.state = _DONE
            self._unread = []


#: Reads of one head that read_head may find unfinished before h11 takes
#: over: a head arrives in one or two reads; read_head rescans all of it at
#: each, so a head trickled in tiny pieces is left to h11, which does not.
_MAX_HEAD_WAITS = 32

#: Methods whose responses h11 frames its own way (a HEAD answer has no
#: body, a CONNECT answer starts a tunnel): their heads always go to h11.
_H11_METHODS = frozenset({b"HEAD", b"CONNECT"})

#: Statuses whose responses have no body, whatever their headers say.
_BODILESS = frozenset({204, 304})


def _is_chunked(response: h11.Response) -> bool:
    return any(
        name == b"transfer-encoding" and value.lower().endswith(b"chunked")
        for name, value in response.headers
    )
