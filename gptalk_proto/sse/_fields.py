"""Server-sent events: the spec's rules for interpreting lines, one field at
a time (spec: "Interpreting an event stream"), for the lines the parser's
fast paths do not take.  Quotations from the standard are marked with
``spec:``.  Bound as :meth:`SSEParser._process`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ._event import SSEEvent, _dispatch

if TYPE_CHECKING:
    from ._parser import SSEParser

__all__ = ["process_lines"]

# The one deliberate deviation from the standard: a retry value with more
# significant digits than int() converts (4300 by default, the CVE-2020-10735
# guard) is ignored, as browsers ignore values their integer type cannot hold
# (Chromium parses into 64 bits).  Such a delay is not a time anyone can wait.
_MAX_RETRY_DIGITS = getattr(sys, "get_int_max_str_digits", lambda: 4300)() or 4300


def process_lines(self: SSEParser, lines: Iterable[str]) -> list[SSEEvent]:
    """Interpret complete lines (spec: "Interpreting an event stream").

    The parser's state lives in locals for the loop and is written back at
    the end: the loop cannot fail (the caps were checked before it).
    """
    events: list[SSEEvent] = []
    data = self._data
    event_type = self._event_type
    id_buffer = self._id_buffer
    last_event_id = self.last_event_id
    event_retry = self._event_retry
    retry = self.retry
    for line in lines:
        if line:
            # The field that nearly every line is, first.
            if line[:6] == "data: ":
                data.append(line[6:])
                continue
            # The next most common fields, spelled as servers write them
            # (the general rules below would give the same result).
            if line[:7] == "event: ":
                event_type = line[7:]
                continue
            if line[:4] == "id: ":
                value = line[4:]
                if "\x00" not in value:
                    id_buffer = value
                continue
            colon = line.find(":")
            if colon == 0:
                # spec: "If the line starts with a U+003A COLON character (:)
                # Ignore the line."
                continue
            if colon < 0:
                # spec: "Otherwise, the string is not empty but does not
                # contain a U+003A COLON character (:) -- Process the field
                # using ... the whole line as the field name, and the empty
                # string as the field value."
                field, value = line, ""
            else:
                # spec: "Collect the characters on the line before the first
                # U+003A COLON character (:), and let field be that string.
                # ... after ... let value be that string. If value starts with
                # a U+0020 SPACE character, remove it from value."
                field = line[:colon]
                value = line[colon + 1 :]
                if value[:1] == " ":
                    value = value[1:]
            if field == "data":
                # spec: "Append the field value to the data buffer, then
                # append a single U+000A LINE FEED (LF) character to the data
                # buffer."
                data.append(value)
            elif field == "event":
                # spec: "Set the event type buffer to the field value."
                event_type = value
            elif field == "id":
                # spec: "If the field value does not contain U+0000 NULL, then
                # set the last event ID buffer to the field value. Otherwise,
                # ignore the field."
                if "\x00" not in value:
                    id_buffer = value
            elif field == "retry":
                # spec: "If the field value consists of only ASCII digits,
                # then interpret the field value as an integer in base ten,
                # and set the event stream's reconnection time to that
                # integer. Otherwise, ignore the field."  An empty value has
                # no digits to interpret: ignored.
                significant = value.lstrip("0") or "0"
                if (
                    value
                    and value.isascii()
                    and value.isdigit()
                    and len(significant) <= _MAX_RETRY_DIGITS
                ):
                    retry = event_retry = int(significant)
            # spec: "Otherwise: The field is ignored."
            continue
        # spec: "If the line is empty (a blank line): Dispatch the event".
        # spec: "1. Set the last event ID string of the event source to the
        # value of the last event ID buffer."
        last_event_id = id_buffer
        if not data:
            # spec: "2. If the data buffer is an empty string, set the data
            # buffer and the event type buffer to the empty string and return."
            event_type = ""
            continue
        # spec: steps 3 to 6, in _dispatch.
        events.append(_dispatch(event_type, data, last_event_id, event_retry))
        # spec: "7. Set the data buffer and the event type buffer to the empty
        # string."  (A new list, not clear(): _account tells dispatches by
        # identity.)
        data = []
        event_type = ""
        event_retry = None
    self._data = data
    self._event_type = event_type
    self._id_buffer = id_buffer
    self.last_event_id = last_event_id
    self._event_retry = event_retry
    self.retry = retry
    return events
