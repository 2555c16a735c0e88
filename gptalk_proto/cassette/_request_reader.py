"""Requests read back from the bytes a client wrote.

The recorder and the replayer both watch a client's requests without
answering them through h11 (the recorder only listens; the replayer answers
from the cassette).  An h11 server connection that never sends a response
cannot cycle to the next request, so each request gets a fresh parser, handed
whatever the previous one read past the end of its request.

A request that arrives whole in one write, in the plainest form (CRLF line
ends, ``HTTP/1.1``, header lines as h11's field rule reads them, at most one
``content-length``, no ``transfer-encoding``, one ``host``), is read
without h11: h11 took most of the recording proxy's per-request CPU, and
building its ``h11.Request`` ran h11's header rules over each header a
second time.  Anything else -- a request cut across writes, any other form,
anything invalid -- goes to h11, whose answers (and errors) are the
reference; what is read here is a subset h11 reads to the same request.
Either way a request's head is a :class:`RequestHead`: the parts of the
``h11.Request`` h11 reads.

A client sends the same field lines request after request (its user agent,
accept, auth headers): a reader given a :class:`KnownFields` reads each such
block of lines once, and later requests with the same bytes take what was
read then (reading ~10 lines, a few calls each, was most of the recording
proxy's work on a request's way to the upstream).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import h11

from .._errors import InvalidHTTP
from .._head import CONTENT_LENGTH
from .._http11 import continue_if_asked, next_h11_event
from .._util import remember

__all__ = [
    "MAX_KNOWN_BLOCK",
    "MAX_KNOWN_BLOCKS",
    "KnownFields",
    "ReadRequest",
    "RequestHead",
    "RequestReader",
]

# RFC 9112 section 3 with h11's target (visible ASCII); HTTP/1.1 only.  Header
# lines are read by h11's own field rule (the language of FIELD, which response
# heads use), checked a head at a time (see RequestReader._plain).
_REQUEST_LINE = re.compile(rb"([-!#$%&'*+.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/1\.1")
# RFC 9110 section 5.6.2's tchar, as lowercase names hold them (what
# ``translate`` deletes: a name of these alone leaves nothing).
_TCHAR = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
# The headers that frame a request or name its host: checked as read.
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"host"})


#: Cap on the blocks of field lines a :class:`KnownFields` remembers.  A
#: client sends a few (one per kind of request, and again when a token or a
#: timestamp in them changes); one more than this empties it first, so a
#: client whose every request differs (a request id in a header) cannot make
#: it hold more, and the common blocks are learnt again at their next request.
MAX_KNOWN_BLOCKS = 32

#: Cap on the bytes of one block of field lines a :class:`KnownFields`
#: remembers; larger ones are read every time.  With MAX_KNOWN_BLOCKS, at
#: most 256 KiB of remembered lines, and about as much again read from them.
MAX_KNOWN_BLOCK = 8 * 1024


class RequestHead(NamedTuple):
    """A request's head: the parts of the ``h11.Request`` h11 reads from it."""

    method: bytes
    target: bytes
    #: ``(name as written, value)``: h11's ``headers.raw_items()``.  Shared
    #: by the requests whose field lines a :class:`KnownFields` knew: never
    #: changed once read.
    raw_headers: list[tuple[bytes, bytes]]
    #: ``(lowercase name, value)``: h11's ``headers`` (shared likewise).
    headers: list[tuple[bytes, bytes]]
    #: The field lines as written (between the request line's CRLF and the
    #: blank line), when read the plain way and at most MAX_KNOWN_BLOCK
    #: bytes; else ``b""``.  The same bytes read to the same headers: a
    #: caller may remember what it made of them under these.
    fields: bytes = b""

    @classmethod
    def of(cls, event: h11.Request) -> RequestHead:
        """The parts of a request h11 read."""
        return cls(event.method, event.target, event.headers.raw_items(), list(event.headers))


class ReadRequest(NamedTuple):
    """One whole request: its head, its body, and the ``t`` given with the
    bytes that completed its head."""

    head: RequestHead
    body: bytes
    t: float


# A NamedTuple's own constructor is a Python function (a frame per call):
# the two made per request are built by tuple's, from their fields in order.
_new = tuple.__new__


class _Fields(NamedTuple):
    """What one block of field lines reads to (see :func:`_read_fields`)."""

    block: bytes
    raw_headers: list[tuple[bytes, bytes]]
    headers: list[tuple[bytes, bytes]]
    #: Its ``content-length``; -1 without one.
    length: int


class KnownFields:
    """Blocks of field lines read before, and what they read to: one shared
    by a recording proxy's connections (its clients send the same lines),
    capped by MAX_KNOWN_BLOCKS blocks of at most MAX_KNOWN_BLOCK bytes."""

    __slots__ = ("_blocks",)

    def __init__(self) -> None:
        self._blocks: dict[bytes, _Fields] = {}

    def __len__(self) -> int:
        return len(self._blocks)

    def read(self, block: bytes) -> _Fields | None:
        """What ``block`` reads to (see :func:`_read_fields`), remembered."""
        found = self._blocks.get(block)
        if found is None:
            found = _read_fields(block)
            if found is not None and len(block) <= MAX_KNOWN_BLOCK:
                remember(self._blocks, block, found, MAX_KNOWN_BLOCKS)
        return found


class RequestReader:
    """Splits a client's bytes into requests.

    Args:
        max_size: cap, in bytes, on a request's head (h11's
            ``max_incomplete_event_size``) and, apart, on its body: both are
            held until complete, and GPTalk's requests are small.
        known: field lines read before (by this reader or others), whose
            reading is reused; None: every request's are read.
    """

    __slots__ = ("_body", "_body_size", "_fresh", "_h11", "_head", "_known", "_max_size", "_t")

    def __init__(self, max_size: int, known: KnownFields | None = None) -> None:
        self._max_size = max_size
        self._known = known
        # Made when a request first needs it: plain requests never do, and a
        # replayed connection's requests are nearly always plain.
        self._h11: h11.Connection | None = None
        self._head: RequestHead | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._t = 0.0
        # h11 holds nothing yet: the next bytes begin a request.
        self._fresh = True

    def feed(self, data: bytes, t: float = 0.0) -> list[ReadRequest]:
        """Bytes the client wrote (at ``t``); the requests they completed.

        Raises :class:`~gptalk_proto._errors.InvalidHTTP` on invalid HTTP; the
        caller says what that means in its own terms.
        """
        done: list[ReadRequest] = []
        if self._fresh:
            while data:
                whole = self._plain(data, t)
                if whole is None:
                    break
                request, data = whole
                done.append(request)
            if not data:
                return done
            self._fresh = False
        conn = self._h11
        if conn is None:
            conn = self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=self._max_size)
        conn.receive_data(data)
        while True:
            event = next_h11_event(conn)
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return done
            if isinstance(event, h11.Request):
                # A body over the cap is refused on its head: at once, not
                # after a 100 Continue asked the client for it (h11 checked
                # the value's form).
                for name, value in event.headers:
                    if name == b"content-length" and int(value) > self._max_size:
                        raise InvalidHTTP(
                            f"a request body over {self._max_size} bytes", status_hint=413
                        )
                self._head, self._body, self._body_size, self._t = RequestHead.of(event), [], 0, t
            elif isinstance(event, h11.Data):
                self._body_size += len(event.data)
                if self._body_size > self._max_size:
                    raise InvalidHTTP(
                        f"a request body over {self._max_size} bytes", status_hint=413
                    )
                self._body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert self._head is not None
                done.append(ReadRequest(self._head, b"".join(self._body), self._t))
                self._head, self._body = None, []
                leftover, _ = conn.trailing_data
                self._fresh = not leftover
                if not leftover:
                    # The next bytes begin a request: the plain way first.
                    self._h11 = None
                    return done
                conn = self._h11 = h11.Connection(
                    h11.SERVER, max_incomplete_event_size=self._max_size
                )
                conn.receive_data(leftover)

    def interim_response(self) -> bytes:
        """``HTTP/1.1 100 Continue`` when the request being read asked for
        it (``Expect: 100-continue`` in an HTTP/1.1 head) and none of its
        body has come yet, once; else ``b""``.  RFC 9110 section 10.1.1:
        the server "MUST NOT wait for the content before sending the 100",
        and "MAY omit" it once some of the content came.  A caller asks
        after :meth:`feed`, and writes it after its answers to the requests
        that completed (the 100 is this request's)."""
        return b"" if self._h11 is None else continue_if_asked(self._h11)

    @property
    def fresh(self) -> bool:
        """Whether nothing is held: the next bytes begin a request."""
        return self._fresh

    def whole(self, data: bytes) -> ReadRequest | None:
        """The one request ``data`` is, whole and plain, when nothing is
        held; else None, and nothing changes (:meth:`feed` then reads it)."""
        found = self._plain(data, 0.0) if self._fresh else None
        return found[0] if found is not None and not found[1] else None

    def known_whole(self, data: bytes) -> tuple[bytes, bytes, _Fields, bytes] | None:
        """``data`` as one whole plain request whose field lines the
        reader's :class:`KnownFields` read before, when nothing is held: its
        method, target, field lines as read, and body -- what :meth:`feed`
        would read, without a :class:`ReadRequest` (a caller's fast way for
        the common request); else None, and nothing changes (:meth:`feed`
        then reads it).  The checks are :meth:`_plain`'s, those of the
        field lines done when they were first read."""
        known = self._known
        if known is None or not self._fresh:
            return None
        found = self._bounds(data)
        if found is None:
            return None
        first, end = found
        fields = known._blocks.get(data[first + 2 : end])
        if fields is None:
            return None
        start = end + 4
        size = max(fields.length, 0)
        # One request, whole, and nothing past it.
        if size > self._max_size or len(data) != start + size:
            return None
        line = _REQUEST_LINE.fullmatch(data, 0, first)
        if line is None:
            return None
        return line[1], line[2], fields, data[start:]

    def _bounds(self, data: bytes) -> tuple[int, int] | None:
        """Where the head ``data`` begins with ends its request line and its
        field lines (``first``, ``end``: each at its CRLF), when it is whole
        within the size cap and has a field line; else None."""
        end = data.find(b"\r\n\r\n")
        if end < 0 or end + 4 > self._max_size:
            return None
        # The request line, then the field lines.  The request line's rule
        # takes no CR, LF, NUL, VT or FF: the checks of the head's bytes are
        # the field lines' alone (see _read_fields).  No field line: no host.
        first = data.find(b"\r\n", 0, end)
        return None if first < 0 else (first, end)

    def _plain(self, data: bytes, t: float) -> tuple[ReadRequest, bytes] | None:
        """The whole plain request ``data`` begins with, and the bytes past
        it; None for h11 to read (cut, not plain, or invalid)."""
        found = self._bounds(data)
        if found is None:
            return None
        first, end = found
        line = _REQUEST_LINE.fullmatch(data, 0, first)
        if line is None:
            return None
        block = data[first + 2 : end]
        known = self._known
        fields = _read_fields(block) if known is None else known.read(block)
        if fields is None:
            return None
        start = end + 4
        size = max(fields.length, 0)
        if size > self._max_size or len(data) < start + size:
            return None
        request_head = _new(
            RequestHead,
            (
                line[1],
                line[2],
                fields.raw_headers,
                fields.headers,
                fields.block if len(block) <= MAX_KNOWN_BLOCK else b"",
            ),
        )
        stop = start + size
        return _new(ReadRequest, (request_head, data[start:stop], t)), data[stop:]


def _read_fields(block: bytes) -> _Fields | None:
    """A plain request's field lines (``block``: between the request line's
    CRLF and the blank line) read as h11 reads them; None for h11 to read
    (not plain, or invalid)."""
    # h11's field rule (FIELD), read a block at a time: each line is
    # ``token ":" rest``, where the rest may hold any byte but NUL and
    # whitespace other than SP and HTAB (the value is the rest without its
    # SP/HTAB at either end).  So the block has no NUL, VT or FF, and no CR
    # or LF but in CRLF pairs; the tokens are checked below.  (A regex call
    # per line cost more than the rest of the parse: these are C scans of
    # the block.)
    crlf = block.count(b"\r\n")
    if (
        block.count(b"\r") != crlf
        or block.count(b"\n") != crlf
        or b"\x00" in block
        or b"\x0b" in block
        or b"\x0c" in block
    ):
        return None
    raw_headers = []
    headers = []
    length = -1
    hosts = 0
    for raw in block.split(b"\r\n"):
        name, colon, value = raw.partition(b":")
        if not name or not colon:
            return None
        value = value.strip(b" \t")
        lower = name.lower()
        if lower in _FRAMING:
            if lower == b"content-length":
                if length >= 0 or CONTENT_LENGTH.fullmatch(value) is None:
                    return None
                length = int(value)
            elif lower == b"transfer-encoding":
                return None
            else:
                hosts += 1
        raw_headers.append((name, value))
        headers.append((lower, value))
    # Every name a token (tchar only): all of them in one scan.
    if b"".join([name for name, _ in headers]).translate(None, _TCHAR):
        return None
    # h11's rule for an HTTP/1.1 request (RFC 9112 section 3.2: "A server
    # MUST respond with a 400 ... to any HTTP/1.1 request message that
    # lacks a Host header field and to any request message that contains
    # more than one"): h11 says why.
    if hosts != 1:
        return None
    return _Fields(block, raw_headers, headers, length)
