"""Content codings (RFC 9110 section 8.4), read through for redaction and lint.

A body a service compressed (``Content-Encoding: gzip``) is bytes that the
value spans of :mod:`._value_spans` cannot see into: a login token inside it
stays in a cassette marked redacted, and lint finds nothing.  Redaction
cannot replace a secret inside such a body either, not without changing the
recorded bytes (the compressed length, every chunk size after it).  So the
secrets are looked for in the decoded body, and a recording whose coded
body holds one (or is in a coding this module cannot read) is refused by
redaction, with what to do instead (see ``redact``).

gzip and deflate are read with the standard library; ``br``, ``zstd`` and
the rest are unknown here.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from .._errors import EXCERPT_LIMIT, escaped

__all__ = [
    "MAX_CODINGS",
    "MAX_DECODED_BODY",
    "MAX_DECODED_CASSETTE",
    "DecodeBudget",
    "body_codings",
    "decode_body",
    "shown_codings",
]

#: Most bytes a coded body is decoded to.  A few kilobytes of gzip can
#: inflate to gigabytes (a zip bomb) in a cassette or a response nobody
#: checked; past this the body counts as unreadable, as an unknown coding.
MAX_DECODED_BODY = 64 * 1024 * 1024

#: Most bytes the coded bodies of one cassette are decoded to, together, in
#: one pass of redaction or lint (see :class:`DecodeBudget`): a cassette of
#: a thousand small bombs, each under MAX_DECODED_BODY, must not cost a
#: thousand times its work.  Past it, a coded body counts as unreadable.
MAX_DECODED_CASSETTE = 256 * 1024 * 1024

#: Most codings one body is read through (a real message has one; RFC 9110
#: section 8.4 allows a list).  Each layer is decoded whole before the next:
#: a body nested thousands of layers deep, each a little smaller, would cost
#: work quadratic in its size (lint promises linear); past this it counts as
#: unreadable.
MAX_CODINGS = 4

#: Most gzip members one body is read as (RFC 1952 section 2.2: a gzip file
#: is a series of members, and a server may write one per flush).
MAX_GZIP_MEMBERS = 4096

#: Most input bytes handed to zlib at once while reading gzip members.  zlib
#: copies all the input after a member's end (``unused_data``), and handed
#: the whole rest of the body each time, a body of many tiny members and one
#: large one cost MAX_GZIP_MEMBERS copies of itself (work quadratic in the
#: body: 4000 members before 20 MB took 85 times as long as one).  In
#: pieces, a member's copy is at most one piece.
_GZIP_PIECE = 16 * 1024

# "identity" is no coding (RFC 9110 section 8.4.1: it is reserved for
# Accept-Encoding, and harmless here).
_NONE = frozenset({"", "identity"})


def body_codings(headers: Iterable[tuple[str, str]]) -> list[str]:
    """The codings applied to a message's content, in the order applied
    (every ``Content-Encoding`` field line, RFC 9110 section 8.4), lowercase,
    without ``identity``."""
    found: list[str] = []
    for name, value in headers:
        if name.lower() == "content-encoding":
            found += [c.strip().lower() for c in value.split(",")]
    return [c for c in found if c not in _NONE]


def shown_codings(codings: list[str]) -> str:
    """``codings`` as a message names them: the cassette's (or a peer's)
    text, so escaped and cut (a header of thousands of names, a C1 control
    a terminal obeys, came out whole)."""
    return escaped(", ".join(codings), EXCERPT_LIMIT)


class DecodeBudget:
    """What one pass over a cassette may still decode (see
    :data:`MAX_DECODED_CASSETTE`)."""

    __slots__ = ("left",)

    def __init__(self, total: int | None = None) -> None:
        self.left = MAX_DECODED_CASSETTE if total is None else total


def decode_body(
    codings: list[str], body: bytes, budget: DecodeBudget | None = None
) -> bytes | None:
    """``body`` with ``codings`` undone, last applied first; None when one is
    unknown here, or broken, or decodes past :data:`MAX_DECODED_BODY` (or
    past what ``budget`` has left, which the decoded body then takes).

    A body cut short (a stream the recording stopped) gives what its bytes
    decode to."""
    if len(codings) > MAX_CODINGS:
        return None
    limit = MAX_DECODED_BODY if budget is None else min(MAX_DECODED_BODY, budget.left)
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip"):
            decoded = _gzip(body, limit)
        elif coding == "deflate":
            # RFC 9110 section 8.4.1.2: the zlib format; some servers send
            # the raw deflate stream instead.
            decoded = _inflate(body, zlib.MAX_WBITS, limit)
            if decoded is None:
                decoded = _inflate(body, -zlib.MAX_WBITS, limit)
        else:
            return None
        if decoded is None:
            return None
        body = decoded
    if budget is not None:
        budget.left -= len(body)
    return body


def _inflate(data: bytes, wbits: int, limit: int) -> bytes | None:
    reader = zlib.decompressobj(wbits)
    try:
        # One byte more than the limit (and never 0, no limit to zlib): with
        # the input all consumed, zlib may still hold output (a match, in a
        # stream cut short), so output that fills the limit says nothing;
        # output past it is a body past it, never one cut there.
        out = reader.decompress(data, limit + 1)
    except zlib.error:
        return None
    return None if reader.unconsumed_tail or len(out) > limit else out


def _gzip(data: bytes, limit: int) -> bytes | None:
    view = memoryview(data)
    pieces: list[bytes] = []
    size = at = 0
    for _ in range(MAX_GZIP_MEMBERS):
        reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while True:
            room = limit - size
            piece = view[at : at + _GZIP_PIECE]
            try:
                out = reader.decompress(piece, room + 1)  # (see _inflate)
            except zlib.error:
                return None
            if reader.unconsumed_tail or len(out) > room:
                return None
            pieces.append(out)
            size += len(out)
            at += len(piece) - len(reader.unused_data)
            if reader.eof or at >= len(data):
                break
        if not reader.eof or at >= len(data):
            return b"".join(pieces)
    return None
