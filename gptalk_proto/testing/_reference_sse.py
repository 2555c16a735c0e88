"""A straightforward reference parser for ``text/event-stream``, for differential tests.

It follows the WHATWG HTML standard, section "Server-sent events",
subsections "Parsing an event stream" and "Interpreting an event stream",
step by step and as literally as Python allows.  It parses a *whole* stream
in one call, has no size caps and makes no attempt at speed: it exists so that
:class:`gptalk_proto.SSEParser` can be checked against something obviously
right.  Lines quoted from the standard are marked ``spec:``.
"""

from __future__ import annotations

import re

from ..sse._event import SSEEvent

__all__ = ["reference_parse"]

# spec: "a U+000D CARRIAGE RETURN U+000A LINE FEED (CRLF) character pair, a
# single U+000A LINE FEED (LF) character not preceded by a U+000D CARRIAGE
# RETURN (CR) character, and a single U+000D CARRIAGE RETURN (CR) character not
# followed by a U+000A LINE FEED (LF) character being the ways in which a line
# can end."  Trying CRLF first makes the other two alternatives mean exactly that.
_LINE_END = re.compile("\r\n|\n|\r")

_ASCII_DIGITS = frozenset("0123456789")


def _utf8_decode(data: bytes) -> str:
    """The Encoding standard's "UTF-8 decode": strip one BOM, replace errors."""
    # spec (note): "The UTF-8 decode algorithm strips one leading UTF-8 Byte
    # Order Mark (BOM), if any."
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    # Python's "replace" handler emits one U+FFFD per maximal subpart of an
    # ill-formed sequence, as the Encoding standard's decoder does.
    return data.decode("utf-8", "replace")


#: The parser's one documented deviation, shared so the differential tests
#: compare like with like: a retry value with more significant digits than
#: this is ignored (browsers ignore what their integer type cannot hold).
MAX_RETRY_DIGITS = 4300


def _base_ten(digits: str) -> int | None:
    """ASCII digits as an integer; None past MAX_RETRY_DIGITS significant digits."""
    significant = digits.lstrip("0")
    if len(significant) > MAX_RETRY_DIGITS:
        return None
    value = 0
    for digit in significant:
        value = value * 10 + ord(digit) - ord("0")
    return value


def reference_parse(data: bytes) -> tuple[list[SSEEvent], str, int | None]:
    """Parse a complete event stream.

    Returns ``(events, last_event_id, retry)``: the dispatched events, the
    event source's last event ID string at the end of the stream, and the
    reconnection time (ms) set by the last valid ``retry`` field, or ``None``.
    Each event's ``retry`` is the value of the last valid ``retry`` field seen
    since the previous dispatched event, or ``None``.
    """
    # spec: "Streams must be decoded using the UTF-8 decode algorithm."
    text = _utf8_decode(data)
    # spec: "The stream must then be parsed by reading everything line by line".
    # The piece after the last line end is not a line: it is the "pending data"
    # of spec: "Once the end of the file is reached, any pending data must be
    # discarded. (If the file ends in the middle of an event, before the final
    # empty line, the incomplete event is not dispatched.)"
    lines = _LINE_END.split(text)[:-1]

    # spec: "When a stream is parsed, a data buffer, an event type buffer, and
    # a last event ID buffer must be associated with it. They must be
    # initialized to the empty string."
    data_buffer = ""
    event_type_buffer = ""
    last_event_id_buffer = ""
    # The event source's "last event ID string" and "reconnection time".
    last_event_id = ""
    reconnection_time: int | None = None
    # The retry value reported on the next dispatched event (not in the spec).
    event_retry: int | None = None
    events: list[SSEEvent] = []

    # spec: "Lines must be processed, in the order they are received, as follows:"
    for line in lines:
        # spec: "If the line is empty (a blank line) -> Dispatch the event"
        if line == "":
            # spec: "1. Set the last event ID string of the event source to the
            # value of the last event ID buffer."
            last_event_id = last_event_id_buffer
            # spec: "2. If the data buffer is an empty string, set the data
            # buffer and the event type buffer to the empty string and return."
            if data_buffer == "":
                event_type_buffer = ""
                continue
            # spec: "3. If the data buffer's last character is a U+000A LINE
            # FEED (LF) character, then remove the last character from the data
            # buffer."
            if data_buffer.endswith("\n"):
                data_buffer = data_buffer[:-1]
            # spec: "5. Initialize event's type attribute to "message", its
            # data attribute to data, ... and its lastEventId attribute to the
            # last event ID string of the event source."
            event_type = "message"
            # spec: "6. If the event type buffer has a value other than the
            # empty string, change the type of the newly created event to equal
            # the value of the event type buffer."
            if event_type_buffer != "":
                event_type = event_type_buffer
            events.append(SSEEvent(event_type, data_buffer, last_event_id, event_retry))
            event_retry = None
            # spec: "7. Set the data buffer and the event type buffer to the
            # empty string."
            data_buffer = ""
            event_type_buffer = ""
            continue

        # spec: "If the line starts with a U+003A COLON character (:) -> Ignore the line."
        if line.startswith(":"):
            continue

        if ":" in line:
            # spec: "Collect the characters on the line before the first U+003A
            # COLON character (:), and let field be that string."
            # spec: "Collect the characters on the line after the first U+003A
            # COLON character (:), and let value be that string."
            field, _, value = line.partition(":")
            # spec: "If value starts with a U+0020 SPACE character, remove it from value."
            if value.startswith(" "):
                value = value[1:]
        else:
            # spec: "Otherwise, the string is not empty but does not contain a
            # U+003A COLON character (:) -> Process the field using the steps
            # described below, using the whole line as the field name, and the
            # empty string as the field value."
            field, value = line, ""

        # spec: "Field names must be compared literally, with no case folding
        # performed."
        if field == "event":
            # spec: "Set the event type buffer to field value."
            event_type_buffer = value
        elif field == "data":
            # spec: "Append the field value to the data buffer, then append a
            # single U+000A LINE FEED (LF) character to the data buffer."
            data_buffer += value + "\n"
        elif field == "id":
            # spec: "If the field value does not contain U+0000 NULL, then set
            # the last event ID buffer to the field value. Otherwise, ignore the
            # field."
            if "\x00" not in value:
                last_event_id_buffer = value
        # spec: "If the field name is "retry" -> If the field value consists of
        # only ASCII digits, then interpret the field value as an integer in
        # base ten, and set the event stream's reconnection time to that
        # integer. Otherwise, ignore the field."  An empty value is no integer.
        elif field == "retry" and value != "" and set(value) <= _ASCII_DIGITS:
            number = _base_ten(value)
            if number is not None:
                reconnection_time = event_retry = number
        # spec: "Otherwise -> The field is ignored."

    return events, last_event_id, reconnection_time
