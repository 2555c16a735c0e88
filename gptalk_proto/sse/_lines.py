"""Server-sent events: line ends in bytes, the parser's scans in C.

``bytes.count`` of one byte reads every byte in a plain loop, while ``find``
and ``in`` use memchr; the helpers here pick whichever costs less for the
shape of line at hand.
"""

from __future__ import annotations

__all__ = ["LONG_LINE", "SHORT_LINES", "VIEW_FROM", "crlf_lines", "lf_lines", "to_lf"]

#: A region whose first line is at least this many bytes goes a line at a
#: time, each value decoded straight from the buffer (and its decode maybe
#: reused: see _growing._REUSE_FROM).  Below that, decoding and splitting the
#: whole region (a few passes in C) costs less than a Python step per line.
LONG_LINE = 2048

#: Pieces of an unfinished line longer than this are kept as views of their
#: chunk rather than copied out of it (a view costs more to make than a short
#: copy).
VIEW_FROM = 2048

#: CRs are rare when the first 2 x this many bytes of a chunk hold at most
#: four (lines of about a kilobyte or more; see to_lf).
SHORT_LINES = 1024


def to_lf(data: bytes) -> bytes:
    """CRLF and lone CR to LF.  ``bytes.replace`` with a two-byte pattern
    scans at well under a byte per cycle; where CRs are rare (long lines) a
    loop over ``find`` (memchr) is several times faster."""
    if data.count(b"\r", 0, 2 * SHORT_LINES) > 4:
        # Split and join rather than replace(b"\r\n", b"\n"): the same bytes,
        # in about half the time on short lines (replace pays a two-byte search
        # per occurrence; split runs one search over the whole).
        data = b"\n".join(data.split(b"\r\n"))
        return data.replace(b"\r", b"\n") if 0x0D in data else data
    parts = []
    find = data.find
    start = 0
    while (cr := find(b"\r", start)) >= 0:
        parts.append(data[start:cr])
        start = cr + 2 if data[cr + 1 : cr + 2] == b"\n" else cr + 1
    parts.append(data[start:])
    return b"\n".join(parts)


def lf_lines(text: str) -> list[str]:
    return text.split("\n")


def crlf_lines(text: str) -> list[str]:
    """The lines of a text whose line ends were not normalised: spec: CRLF,
    a lone LF and a lone CR each end a line.  (CR and LF are ASCII, never
    inside a UTF-8 sequence nor made by the decoder's replacement, so this on
    the text is what normalising the bytes and then decoding gives.)"""
    text = text.replace("\r\n", "\n")
    return (text.replace("\r", "\n") if "\r" in text else text).split("\n")
