"""Response heads read without h11, when they are plain; h11 reads the rest.

Why: h11 reads a head in pure Python through several layers (its receive
buffer, its event classes, its state machine), and the client reads two or
three heads per chat; h11 was over a third of a short chat's CPU.  A GPTalk
server's heads are plain: ``HTTP/1.1``, a 2xx-5xx status, a few headers, and
either ``Content-Length`` or ``Transfer-Encoding: chunked``.

The rule that keeps this exact: :func:`read_head` answers only where h11
would give the same answer, and otherwise returns ``None`` and touches
nothing, so the caller hands the very same bytes to h11 (which then accepts
or refuses them as it always did).  A differential property test holds it to
h11 0.16.  What it answers:

* ``NEED_DATA`` when h11 would wait too: no blank line yet, nothing h11
  refuses early (a first byte below ``!``), and no more than the head cap
  buffered (past it h11 raises, so h11 is asked);
* a :class:`PlainHead` for a head whose lines all end in CRLF, whose status
  line is ``HTTP/1.1 NNN`` with a status from 200 to 599 (not 204 or 304,
  which h11 frames as empty) and a reason of visible characters, spaces or
  tabs, and whose fields all match h11's field rule with no line folding;
  with exactly one ``Content-Length`` of 1 to 20 digits or exactly one
  ``Transfer-Encoding`` that is ``chunked`` (any case), not both;
* ``None`` for everything else (1xx, HTTP/1.0, bare LF line ends, folded or
  invalid lines, repeated or odd framing headers, a body read to EOF).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from ._util import NEED_DATA, NeedData, remember

__all__ = ["CHUNKED", "CONTENT_LENGTH", "FIELD", "PlainHead", "read_head", "says_close"]

#: ``PlainHead.length`` of a chunked body.
CHUNKED = -1

# A subset of h11's status line (HTTP-version SP status-code [SP reason]):
# version 1.1 only, status 200-599, a reason of VCHAR, obs-text, SP or HTAB
# (h11 also takes other control bytes there; those go to h11).
_STATUS = re.compile(rb"HTTP/1\.1 ([2-5][0-9][0-9])(?: [\t\x20-\x7e\x80-\xff]*)?")
#: Exactly h11's header-field rule (RFC 9110 section 5): token ":" OWS
#: field-value OWS, where field-value is field-vchars (VCHAR or obs-text, as
#: h11 reads them: not NUL, not whitespace) separated by SP/HTAB.  Groups:
#: the name, and the value (None when empty).  The one copy: requests and
#: trailers are read by the same rule.
FIELD = re.compile(rb"([-!#$%&'*+.^_`|~0-9a-zA-Z]+):[ \t]*([^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?[ \t]*")
#: h11's Content-Length rule, one value (a list of equal values goes to h11).
CONTENT_LENGTH = re.compile(rb"[0-9]{1,20}")


#: Status and field lines read before, and what the rules above made of them.
#: A server sends the same few lines in every response (``HTTP/1.1 200 OK``,
#: its content types, ``Transfer-Encoding: chunked``), and the client reads
#: two or three heads per chat: a dict lookup of the line's bytes then stands
#: for a regular expression, a lowering and two group reads (the same bytes
#: give the same answer, so nothing h11 would say changes).  Capped, because
#: some lines differ in every response (a ``Date``, a ``Content-Length``): a
#: line that would be one too many empties its dict first, so the lines in
#: use now are learnt again at once (one lookup that misses and one insert a
#: response for a server that sends a Date; a peer that sends new lines on
#: purpose only makes them read by the rules, as before).  Threads that share
#: a client may add a few past the cap at once; each line is at most
#: MAX_KNOWN_LINE bytes.
MAX_KNOWN_LINES = 64
#: The longest line kept among the known ones, in bytes.
MAX_KNOWN_LINE = 256

#: ``status line -> status``, for the lines _STATUS matches (not 204 or 304).
_known_status: dict[bytes, int] = {}
#: ``field line -> (lowercase name, value as handed over, framing)``: framing
#: is the body's length for a Content-Length line, CHUNKED for a chunked
#: Transfer-Encoding, _CLOSE for a Connection line that says close, else _PLAIN.
_known_fields: dict[bytes, tuple[bytes, bytes, int]] = {}
_PLAIN = -2
_CLOSE = -3


def _status(line: bytes) -> int | None:
    # A status line's status, if it is one read_head answers for.
    status = _known_status.get(line)
    if status is not None:
        return status
    status_match = _STATUS.fullmatch(line)
    if status_match is None:
        return None
    status = int(status_match[1])
    if status == 204 or status == 304:  # noqa: PLR1714 - h11 frames these as empty
        return None
    if len(line) <= MAX_KNOWN_LINE:
        remember(_known_status, line, status, MAX_KNOWN_LINES)
    return status


def _field(line: bytes) -> tuple[bytes, bytes, int] | None:
    # A field line read by FIELD: (lowercase name, value, framing); None for
    # a line h11 must read (not a field, a Content-Length that is not one
    # number, a Transfer-Encoding other than chunked).
    match = FIELD.fullmatch(line)
    if match is None:
        return None
    name = match[1].lower()
    value = match[2] or b""
    framing = _PLAIN
    if name == b"content-length":
        if not CONTENT_LENGTH.fullmatch(value):
            return None  # a list: h11 decides
        framing = int(value)
    elif name == b"transfer-encoding":
        value = value.lower()  # as h11 hands it over
        if value != b"chunked":
            return None
        framing = CHUNKED
    elif name == b"connection" and says_close([(name, value)]):
        framing = _CLOSE
    read = (name, value, framing)
    if len(line) <= MAX_KNOWN_LINE:
        remember(_known_fields, line, read, MAX_KNOWN_LINES)
    return read


class PlainHead(NamedTuple):
    """A head read here: what h11 would have said about it."""

    status: int
    #: ``(lowercase name, value)``, as h11's ``Response.headers`` gives them.
    headers: list[tuple[bytes, bytes]]
    #: Where the body starts in the bytes read.
    end: int
    #: The body's length, or :data:`CHUNKED`.
    length: int
    #: Whether the response lets the connection be kept (h11's rule for an
    #: HTTP/1.1 response: no ``close`` among its ``Connection`` tokens).
    keep_alive: bool


#: Named tuples built with ``tuple.__new__``: the same tuple as the class's
#: call, without its generated ``__new__`` (a Python frame) per request/head.
_new = tuple.__new__


def says_close(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the ``Connection`` fields hold the token ``close``, split and
    compared exactly as h11 does (comma-separated, stripped, any case)."""
    for name, value in headers:
        if name == b"connection":
            for token in value.split(b","):
                if token.strip().lower() == b"close":
                    return True
    return False


def read_head(data: bytes, max_head_size: int) -> PlainHead | NeedData | None:
    """A response head from the start of ``data`` (see the module's rules)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        # h11 refuses these before any blank line, or finds a blank line
        # made with bare LFs: its answer, not ours.
        if (
            not data
            or data[0] < 0x21
            or len(data) > max_head_size
            or b"\n\n" in data
            or b"\n\r\n" in data
        ):
            return None
        return NEED_DATA
    lines = data[:end].split(b"\r\n")
    # No CR or LF can hide in a line that matches these rules, so h11's
    # search for the first blank line ends where this one did.
    status = _status(lines[0])
    if status is None:
        return None
    headers: list[tuple[bytes, bytes]] = []
    length = -2  # no framing header yet
    keep_alive = True
    known = _known_fields.get
    for line in lines[1:]:
        read = known(line) or _field(line)
        if read is None:
            return None
        name, value, framing = read
        if framing != _PLAIN:
            if framing == _CLOSE:
                keep_alive = False
            elif length != -2:
                return None  # repeated, or both framings: h11 decides
            else:
                length = framing
        headers.append((name, value))
    if length == -2:
        return None  # a body read to EOF: h11's framing
    return _new(PlainHead, (status, headers, end + 4, length, keep_alive))
