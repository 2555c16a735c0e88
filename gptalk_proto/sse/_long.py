"""Server-sent events: the parser's steps for long lines.

Cumulative replies run to kilobytes a line: their values are decoded one by
one straight from the buffer, a data line with the blank line after it makes
an event here, with no list to join, and so does a long line that a chunk
completes.  Its own module to keep the
parser's under the house's size.  It reads and writes the parser's state
(``self`` is the parser), as a method would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._event import SSEEvent, _dispatch, _new_event

if TYPE_CHECKING:
    from ._parser import SSEParser

__all__ = ["process_long", "whole_event"]


def process_long(
    self: SSEParser, head: bytes, start: int, size: int, crlf: bool = False
) -> list[SSEEvent]:
    """The general loop's rules, for long lines: each data value is decoded
    once, straight from the buffer without its "data: " prefix (one copy,
    where decode-split-slice makes two); a data line and the blank line
    after it make an event here; any other line goes through
    :meth:`_process`.

    ``crlf``: the lines were not normalised (see :meth:`feed`).  A line
    then ends at the CR before its LF, and a CR anywhere else (spec: a
    line end of its own) sends that piece through the general rules.
    """
    view = memoryview(head)
    find = head.find
    events: list[SSEEvent] = []
    data = self._data
    grower = self._grower
    while True:
        end = find(b"\n", start, size)
        stop = size if end < 0 else end
        if crlf and stop > start:
            if end >= 0 and head[stop - 1] == 0x0D:
                stop -= 1
            if find(b"\r", start, stop) >= 0:
                # Lone CRs: the piece holds several lines.
                self._data = data
                text = str(view[start:stop], "utf-8", "replace")
                events += self._process(text.replace("\r", "\n").split("\n"))
                data = self._data
                if end < 0:
                    break
                start = end + 1
                continue
        if head.startswith(b"data: ", start, stop):
            if grower is not None:
                value = grower.decode(head, view, start + 6, stop)
            else:
                value = str(view[start + 6 : stop], "utf-8", "replace")
            after = end + 1
            if (
                end >= 0
                and not data
                and (after == size or head[after] == 0x0A or (crlf and head[after] == 0x0D))
            ):
                # The blank line after it (an empty line at the region's
                # end, or LF, or CRLF next): spec: dispatch (steps 1, 3 to
                # 7, as in _process) with this one value, no list to join.
                if after < size and head[after] == 0x0D:
                    if not head.startswith(b"\r\n", after):
                        data.append(value)  # a lone CR: the general rules
                        start = after
                        continue
                    after += 1
                self.last_event_id = self._id_buffer
                events.append(
                    _new_event(
                        SSEEvent,
                        (
                            self._event_type or "message",
                            value,
                            self._id_buffer,
                            self._event_retry,
                        ),
                    )
                )
                self._event_type = ""
                self._event_retry = None
                if after >= size:
                    break
                start = after + 1
                continue
            data.append(value)
        elif stop == start and data:
            # spec: dispatch (steps 1, 3 to 7, as in _process).
            self.last_event_id = self._id_buffer
            events.append(_dispatch(self._event_type, data, self.last_event_id, self._event_retry))
            data = self._data = []
            self._event_type = ""
            self._event_retry = None
        else:
            self._data = data
            events += self._process((str(view[start:stop], "utf-8", "replace"),))
            data = self._data
        if end < 0:
            break
        start = end + 1
    self._data = data
    return events


def whole_event(
    self: SSEParser, line: bytes, data: bytes, first: int, crlf: bool
) -> tuple[SSEEvent, int] | None:
    """A long line just completed (``line``, its line end at
    ``data[first]``): when it is a data line, nothing is pending and a
    blank line follows in ``data``, its event and where the chunk goes on
    after the blank line; else ``None``, and nothing changed.

    This is what the general rules give for those two lines (spec: append
    the value to the empty data buffer, then dispatch it: type "message",
    the last event ID buffer, no retry), in one step: a reply resent whole
    in every event completes such a line in nearly every chunk.
    """
    stop = len(line)
    if crlf and line.endswith(b"\r"):
        stop -= 1
        after = first + 3 if data.startswith(b"\r\n", first + 1) else 0
    else:
        after = first + 2 if data.startswith(b"\n", first + 1) else 0
    if (
        not after
        or not line.startswith(b"data: ")
        or self._data
        or self._event_type
        or self._event_retry is not None
        or stop > self.max_line_size
        or stop > self.max_event_size
        or (crlf and line.find(b"\r", 0, stop) >= 0)
    ):
        return None
    view = memoryview(line)
    grower = self._grower
    if grower is not None:
        value = grower.decode(line, view, 6, stop)
    else:
        value = str(view[6:stop], "utf-8", "replace")
    # spec: dispatch, step 1: the last event ID string is the buffer's.
    self.last_event_id = last_id = self._id_buffer
    self._data_size = 0
    return _new_event(SSEEvent, ("message", value, last_id, None)), after
