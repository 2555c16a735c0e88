"""Server-sent events: line ends in bytes, the parser's scans in C.

``bytes.count`` of one byte reads every byte in a plain loop, while ``find``
and ``in`` use memchr; the helpers here pick whichever costs less for the
shape of line at hand.
"""

from __future__ import annotations

__all__ = [
    "EXTENDS_LONG_LINE",
    "LONG_LINE",
    "MIXED_FROM",
    "SHORT_LINES",
    "VIEW_FROM",
    "crlf_lines",
    "lf_lines",
    "long_lines_from",
    "to_lf",
]

#: A region whose first line is at least this many bytes goes a line at a
#: time, each value decoded straight from the buffer (and its decode maybe
#: reused: see _growing._REUSE_FROM).  Below that, decoding and splitting the
#: whole region (a few passes in C) costs less than a Python step per line.
LONG_LINE = 2048

#: A region whose first line is short is cut before its long lines (see
#: long_lines_from) when at least its last this many bytes are in them: each
#: long line then costs a few thousand instructions of Python steps, where
#: its decode with the short ones cost several per byte; a few long lines
#: alone, the first of which is decoded whole anyway, do not pay for the
#: steps (nor for the search).
MIXED_FROM = 8 * LONG_LINE

#: LONG_LINE for a parser whose grower hands over Extensions
#: (GrowingValues.extends: the chat client's own parser), fixed at its first
#: bytes (see SSEParser._long_line); every other parser keeps LONG_LINE.
#: Such a value is never joined: from the second on, each line costs a
#: compare of its bytes and a decode of what it added, so the Python steps
#: per line (a few thousand instructions) pay for themselves on shorter
#: lines than where each value's text is made.  Callgrind, instructions per
#: chat of the client's core replaying captured reads, against 2048: 2,000
#: characters raw -25%, -18%, -19% (1, 4, 32 ch/event), ascii -7%, 0, -8%;
#: 8 KB raw -4% to -6% (LF and CRLF), ascii -2% to +1.5%; 1 KB raw -5% (4)
#: and -1% (32); but 1 KB ascii +3% (1 and 32) and +7% (4): ASCII decodes
#: in C for less than those steps up to about 1.5 KB, and a parser cannot
#: tell ASCII JSON before the bytes.  256 bytes and 1024 were worse overall
#: (256: 1 KB ascii +16%, 8 KB ascii CRLF +2%; 1024: 2,000 raw at 32
#: ch/event -16%, 1 KB raw -1%), and so was 768.  MIXED_FROM stays (8 x 512
#: measured the same or a little dearer).  The same as
#: _growing.EXTENDS_REUSE_FROM: a line that goes alone is one whose value
#: is reused.
EXTENDS_LONG_LINE = 512

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


def long_lines_from(buf: bytes, start: int, end: int, long_line: int = LONG_LINE) -> int:
    """Where long lines start in the region ``buf[start:end]`` (whole lines,
    without the last line end) whose first line is short, when the line
    MIXED_FROM bytes before its end is long: the start of a line of
    ``long_line`` bytes or more (the parser's: LONG_LINE or
    EXTENDS_LONG_LINE), no later than that one, every line probed before it
    shorter; else ``end``.

    A cumulative reply's lines grow with every event, and a client's read
    of 256 KiB holds the last of the short ones and then long ones: the
    short ones go best decoded together, the long ones one by one, their
    decode maybe reused (decoding a read whole was a fifth of a chat's
    parse).  Found by bisection over the bytes, each probe the line around
    one position (two memchr scans), so a read costs a few dozen Python
    steps: exact for lines that only grow, and for others a place to cut
    like any other (the lines on either side are read by the same rules).
    """
    probe = end - MIXED_FROM
    if probe <= start:
        return end
    rfind, find = buf.rfind, buf.find
    line_start = max(rfind(b"\n", start, probe) + 1, start)
    line_end = find(b"\n", probe, end)
    if (end if line_end < 0 else line_end) - line_start < long_line:
        return end
    low, high = start, line_start
    while low < high:
        middle = (low + high) // 2
        line_start = max(rfind(b"\n", low, middle) + 1, low)
        line_end = find(b"\n", middle, high)
        if line_end < 0:
            line_end = high
        if line_end - line_start >= long_line:
            high = line_start
        else:
            low = line_end + 1
    return high
