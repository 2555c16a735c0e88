"""Server-sent events: the parser's steps when a chunk may go over a cap.

Rare: a chunk whose lines could take the pending event over the event cap,
or whose complete lines together exceed the line cap, is read one line at a
time, so that the error, the events before it and the state after it are
the same however the stream was cut.  Its own module to keep the parser's
under the house's size.  It reads and writes the parser's state (``self`` is
the parser), as a method would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._event import SSEEvent

if TYPE_CHECKING:
    from ._parser import SSEParser

__all__ = ["over_line_cap", "process_checked"]


def over_line_cap(self: SSEParser, head: bytes) -> list[SSEEvent]:
    """``head``'s complete lines (LF line ends, the last one left out)
    together exceed the line cap.  Find the first line over it; the lines
    before it are interpreted (and may fail on the event cap first, being
    first in the stream)."""
    lines = head.split(b"\n")
    for index, line in enumerate(lines):
        if len(line) > self.max_line_size:
            before = b"\n".join(lines[:index]).decode("utf-8", "replace")
            events = process_checked(self, before.split("\n")) if index else []
            self._fail_line(len(line), events)
    return self._within_line_cap(head, 0, len(head))


def process_checked(self: SSEParser, lines: list[str]) -> list[SSEEvent]:
    """The general loop, one line at a time, the event cap checked at the
    data line that crosses it."""
    events: list[SSEEvent] = []
    size = self._data_size
    for line in lines:
        before = self._data
        count = len(before)
        events += self._process([line])
        if self._data is not before:
            size = 0  # dispatched (a line that dispatches adds no data)
        elif len(before) > count:
            size += len(before[-1]) + 1
            if size - 1 > self.max_event_size:
                self._fail_event(events, size - 1)
    return events
