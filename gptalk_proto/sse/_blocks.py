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

from ._event import SSEEvent, _new_event

__all__ = ["field_blocks"]

# One block: the field names spelled as servers write them, each with its
# space, values without a line end (and ids without NUL); "{}" opens a group.
_FIELDS = "id: {}[^\n\x00]*)\nevent: {}[^\n]*)\ndata: {}[^\n]*(?:\ndata: [^\n]*)*)\n\n"
_ONE = re.compile(_FIELDS.format("(", "(", "("))
# The run of blocks at the start of a text: where it ends.  Each block's extent
# is fixed (its data lines stop at the first blank line), so the blocks
# findall() finds in the run are the run's blocks, in order.
_RUN = re.compile("(?:" + _FIELDS.format("(?:", "(?:", "(?:") + ")*")


def field_blocks(text: str) -> tuple[int, list[SSEEvent]]:
    """The events of the run of whole ``id``/``event``/``data`` blocks that
    starts ``text``, and where the run ends (0: none; the caller goes on from
    there with the general rules; the last event's ``id`` is the last event
    ID string)."""
    if not text.startswith("id: "):
        return 0, []
    match = _RUN.match(text)
    run = match.end() if match else 0
    if not run:
        return 0, []
    return run, [
        _new_event(SSEEvent, (event or "message", data.replace("\ndata: ", "\n"), id, None))
        for id, event, data in _ONE.findall(text, 0, run)
    ]
