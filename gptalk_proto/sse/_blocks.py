"""Server-sent events: runs of whole field blocks, recognised in C.

Servers that name their events write every block the same way: an ``id``
line, an ``event`` line, one or more ``data`` lines, a blank line.  The spec's
loop takes a Python step per line (six per event for three data lines); here
a run of such blocks is matched by one regular expression in C, and its events
are built from the groups, one step per event.

What a matched block gives is what the spec's rules give, line by line:

* ``id: V`` (V without NUL or line end) -- spec: "If the field value does not
  contain U+0000 NULL, then set the last event ID buffer to the field value."
  A value with NUL is ignored by the spec: such a block does not match here,
  and goes through the general loop.
* ``event: T`` -- spec: "Set the event type buffer to the field value."
* ``data: V`` lines -- spec: "Append the field value to the data buffer, then
  append a single U+000A LINE FEED (LF) character", the last LF removed at
  dispatch: the values joined by LF.  No value holds a line end, so every
  ``"\\ndata: "`` in the captured lines is a line start: replacing it by LF
  joins the values.
* the blank line dispatches (spec: "Dispatch the event"): the last event ID
  string becomes the block's id, type ``T`` or "message" when empty, no retry
  (no retry line in the block).

Only lines are matched: the caller runs this on whole lines (the region's
text, without its last line end) when no event is pending.
"""

from __future__ import annotations

import re
from itertools import repeat
from operator import contains

from ._event import SSEEvent, _new_event

__all__ = ["field_blocks", "simple_run"]

#: Regions whose first line is at least this many bytes long are split first
#: and then checked (see simple_run); shorter ones are counted first.
_COUNT_BELOW = 128

# One block: the field names spelled as servers write them, each with its
# space, values without a line end (ids without NUL, event types not empty),
# then what else is left: findall() takes the blocks one after the other from
# the start, and the first text that is not one whole block ends the run and
# lands, whole, in the last group.  So one pass in C finds the run and its
# groups.
_FIELDS = "id: ([^{e}\x00]*){n}event: ([^{e}]+){n}data: ([^{e}]*(?:{n}data: [^{e}]*)*){n}{n}|(.+)"
_RUNS = {
    False: re.compile(_FIELDS.format(e="\n", n="\n"), re.DOTALL),
    True: re.compile(_FIELDS.format(e="\r\n", n="\r\n"), re.DOTALL),
}


def field_blocks(text: str, crlf: bool = False) -> tuple[list[SSEEvent], str]:
    """The events of the run of whole ``id``/``event``/``data`` blocks that
    starts ``text``, and the text after the run (the caller goes on from there
    with the general rules; the last event's ``id`` is the last event ID
    string).  ``crlf``: the text's lines end in CRLF (not normalised)."""
    found = _RUNS[crlf].findall(text)
    rest = found.pop()[3] if found and found[-1][3] else ""
    if not found:
        return [], rest
    ids, types, datas, _ = zip(*found, strict=True)
    joined = map(str.replace, datas, repeat("\r\ndata: " if crlf else "\ndata: "), repeat("\n"))
    return list(map(_new_event, repeat(SSEEvent), zip(types, joined, ids, repeat(None)))), rest


def simple_run(
    buf: bytes, start: int, end: int, crlf: bool
) -> tuple[bool, list[str], str | None] | None:
    """The region ``buf[start:end]`` (whole lines, without the last line end)
    when it is made of simple blocks -- one ``"data: "`` line, then a blank
    line -- maybe opened by a blank line (which dispatches what is pending)
    and maybe closed by a data line still waiting for its blank line.  Gives
    (whether a blank line opens it, the values of the whole blocks, the value
    of the waiting data line or ``None``); ``None`` when the region is
    anything else.

    Nearly every stream is such blocks, short or long.  Whether a region is
    one is decided by counting, in C, not by looking at each line: with k
    occurrences of ``"\\n\\ndata: "`` (they cannot overlap), a region that
    starts with ``"data: "`` and holds 2k line ends, or 2k + 1 of which the
    last is its final byte, has every other line end inside one of those
    occurrences.  So it reads ``"data: V1"``, then ``"\\n\\ndata: Vi"`` k
    times, then maybe the last block's blank line, with no line end in any
    Vi.  One decode and one split then give the values.

    With ``crlf`` the lines end in CRLF (the caller found CRLF before its last
    line end and no CR after it): the same count with ``"\\r\\n\\r\\ndata: "``,
    and as many CRs as LFs, proves every line end a CRLF, so the stream is
    read as it came, without normalising it to LF first (a copy of every
    chunk, and most of the parse of short CRLF events).  A lone CR (spec: a
    line end of its own) leaves the counts unequal: ``None``.
    """
    first = start
    if crlf:
        if buf.startswith(b"\r\n", start, end):
            first += 2  # a blank line first: it dispatches what is pending
    elif start < end and buf[start] == 0x0A:
        first += 1
    opened = first > start
    if start == end:
        return None  # one blank line: the general rules
    if not buf.startswith(b"data: ", first, end):
        if first < end:
            return None
        # The region is one blank line (or two): dispatch, nothing more.
        return (opened, [], None) if opened else None
    # Where the last value stops: before the last block's blank line when
    # the region ends with it, else at the end (a data line still waiting for
    # its blank line).
    whole = buf[end - 1] == 0x0A
    stop = end - (2 if crlf else 1) if whole else end
    if whole and crlf and buf[end - 2] != 0x0D:
        return None
    sep = "\r\n\r\ndata: " if crlf else "\n\ndata: "
    if buf.find(b"\n", first, first + _COUNT_BELOW) < 0:
        # Longer lines: split first, then prove it.  Counting line ends reads
        # every byte in a plain loop; on lines of a few hundred bytes that
        # costs more than the decode.  Finding no line end in any value
        # (memchr, in C) proves the same: every line end is then inside a
        # separator.
        values = str(memoryview(buf)[first + 6 : stop], "utf-8", "replace").split(sep)
        if any(map(contains, values, repeat("\n"))) or (
            crlf and any(map(contains, values, repeat("\r")))
        ):
            return None
    else:
        blocks = buf.count(b"\r\n\r\ndata: " if crlf else b"\n\ndata: ", first, end)
        lines = buf.count(b"\n", first, end)
        if crlf and buf.count(b"\r", first, end) != lines:
            return None
        if lines != 2 * blocks + whole:
            return None
        values = str(memoryview(buf)[first + 6 : stop], "utf-8", "replace").split(sep)
    return opened, values, values.pop() if stop == end else None
