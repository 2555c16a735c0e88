"""Where a recorded message holds values, as opposed to protocol syntax.

Redaction replaces secrets, and lint looks for them, only inside values:
header values (except the ones that frame the message), query values, JSON
string values and SSE ``data`` values.  Header names, the start line, chunk
framing, JSON keys and SSE field names are syntax: a secret that happens to
spell ``chunked``, ``data`` or ``content`` must not change them, or the
cassette no longer parses as what was on the wire.

Every function here is one linear pass (no backtracking regex), returns byte
spans ``(start, end)`` into the bytes it was given, and is lenient: a message
cut anywhere (a stream that broke, a recording that stopped) still yields the
values it holds so far, an unterminated one running to the end.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..sse._media import is_event_stream

__all__ = [
    "FRAMING_HEADERS",
    "Message",
    "Span",
    "body_spans",
    "header_value_spans",
    "json_string_spans",
    "parse_message",
    "put_payload",
    "query_value_spans",
    "sse_data_spans",
    "target_value_spans",
    "text_value_spans",
]

Span = tuple[int, int]

#: Header fields whose values are protocol syntax, not data: they frame the
#: message (RFC 9112 section 6: Content-Length, Transfer-Encoding), say how to
#: parse the content (RFC 9110 section 8.3, Content-Type: a GPTalk stream is
#: told from a JSON reply by it), or manage the connection (RFC 9110 section
#: 7.6.1).  A secret spelled like one of their values is left alone there.
FRAMING_HEADERS = frozenset(
    {b"content-length", b"transfer-encoding", b"content-type", b"connection", b"content-encoding"}
)

_LINE_END = re.compile(rb"\r\n|\r|\n")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_OWS = b" \t"
_JSON_SPACE = b" \t\r\n"


def header_value_spans(head: bytes, *, start_line: bool = True) -> list[Span]:
    """The value of every field line of an HTTP head (its start line skipped;
    ``start_line=False``: a trailer section, which has none), except the
    :data:`FRAMING_HEADERS`; without surrounding whitespace."""
    spans: list[Span] = []
    start = 0
    ends = [m.start() for m in _LINE_END.finditer(head)]
    for index, end in enumerate([*ends, len(head)]):
        colon = head.find(b":", start, end)
        if (index or not start_line) and colon > start:  # the start line is syntax
            name = head[start:colon].strip(_OWS).lower()
            if name not in FRAMING_HEADERS:
                spans.append(_strip(head, colon + 1, end, _OWS))
        start = _after_line_end(head, end)
    return [span for span in spans if span[0] < span[1]]


def _after_line_end(data: bytes, end: int) -> int:
    if data.startswith(b"\r\n", end):
        return end + 2
    return end + 1


def _strip(data: bytes, start: int, end: int, chars: bytes) -> Span:
    while start < end and data[start] in chars:
        start += 1
    while end > start and data[end - 1] in chars:
        end -= 1
    return start, end


def target_value_spans(target: bytes) -> list[Span]:
    """A target's path (an origin-form target's, or a URL's after its
    authority; the slashes in it too), then its query values: the values of
    a target.  Some APIs take a key as a path segment (``/bot<key>/send``),
    and a secret named by the caller must not stay there."""
    start = 0
    scheme = target.find(b"://")
    if scheme > 0 and target[0:1] != b"/":
        slash = target.find(b"/", scheme + 3)
        start = len(target) if slash < 0 else slash
    stop = len(target)
    for mark in (b"?", b"#"):
        found = target.find(mark, start)
        if 0 <= found < stop:
            stop = found
    path = [(start, stop)] if start < stop else []
    return path + query_value_spans(target)


def query_value_spans(target: bytes) -> list[Span]:
    """The value of every ``key=value`` pair in a target's query (a URL or an
    origin-form target); keys and separators are syntax."""
    query = target.find(b"?")
    if query < 0:
        return []
    fragment = target.find(b"#", query)
    stop = len(target) if fragment < 0 else fragment
    spans: list[Span] = []
    start = query + 1
    while start <= stop:
        amp = target.find(b"&", start, stop)
        end = stop if amp < 0 else amp
        equals = target.find(b"=", start, end)
        if equals >= 0 and equals + 1 < end:
            spans.append((equals + 1, end))
        start = end + 1
    return spans


def _looks_like_json(data: bytes, start: int, end: int) -> bool:
    while start < end and data[start] in _JSON_SPACE:
        start += 1
    return start < end and data[start] in b"{["


def json_string_spans(data: bytes, start: int = 0, end: int | None = None) -> list[Span]:
    """The contents (between the quotes, escapes as written) of every JSON
    string *value* in ``data[start:end]``; a string followed by ``:`` is a key
    and is skipped.  An unterminated string at the end is a value to the end."""
    stop = len(data) if end is None else end
    spans: list[Span] = []
    at = data.find(b'"', start, stop)
    while at >= 0:
        content = at + 1
        close = _string_end(data, content, stop)
        if close >= stop:
            spans.append((content, stop))
            break
        after = close + 1
        while after < stop and data[after] in _JSON_SPACE:
            after += 1
        if not (after < stop and data[after] == ord(":")):
            spans.append((content, close))
        at = data.find(b'"', close + 1, stop)
    return [span for span in spans if span[0] < span[1]]


def _string_end(data: bytes, start: int, stop: int) -> int:
    # The closing quote: one not escaped by an odd run of backslashes.  Each
    # backslash run is counted once (it ends at the quote that follows it).
    at = start
    while True:
        quote = data.find(b'"', at, stop)
        if quote < 0:
            return stop
        slashes = 0
        back = quote - 1
        while back >= at and data[back] == ord("\\"):
            slashes += 1
            back -= 1
        if slashes % 2 == 0:
            return quote
        at = quote + 1


def text_value_spans(data: bytes, start: int = 0, end: int | None = None) -> list[Span]:
    """The values in one piece of content: its JSON string values if it
    starts like JSON (``{`` or ``[``), else the whole piece."""
    stop = len(data) if end is None else end
    if _looks_like_json(data, start, stop):
        return json_string_spans(data, start, stop)
    return [(start, stop)] if start < stop else []


def sse_data_spans(payload: bytes) -> list[Span]:
    """The values of every ``data`` field of an event stream, each one a
    :func:`text_value_spans` piece.  Lines end as WHATWG HTML section 9.2.5
    says (CRLF, LF or CR); ``data:`` and one optional space are syntax, and
    other fields (event, id, retry, comments) are left alone.  A last line with
    no line end (a cut stream) counts."""
    spans: list[Span] = []
    start = 0
    ends = [m.start() for m in _LINE_END.finditer(payload)]
    for end in [*ends, len(payload)]:
        if payload.startswith(b"data:", start, end):
            value = start + 5
            if value < end and payload[value] == ord(" "):
                value += 1
            spans += text_value_spans(payload, value, end)
        start = _after_line_end(payload, end)
    return spans


def body_spans(payload: bytes, content_type: bytes) -> list[Span]:
    """The values in a message's content, by its media type."""
    if is_event_stream(content_type):
        return sse_data_spans(payload)
    return text_value_spans(payload)


def _head_end(wire: bytes) -> int:
    # Where the head ends, its blank line included (RFC 9112 section 2.1);
    # a head cut short runs to the end.
    ends = [i for i in (wire.find(b"\r\n\r\n"), wire.find(b"\n\n")) if i >= 0]
    if not ends:
        return len(wire)
    first = min(ends)
    return first + (4 if wire.startswith(b"\r\n\r\n", first) else 2)


def _field(head: bytes, name: bytes) -> bytes:
    values = []
    for line in _LINE_END.split(head)[1:]:
        field, colon, value = line.partition(b":")
        if colon and field.strip(_OWS).lower() == name:
            values.append(value.strip(_OWS))
    return b", ".join(values)


def _chunk_data(body: bytes, base: int) -> tuple[list[Span], list[Span]]:
    # The data of each chunk (RFC 9112 section 7.1): size lines, extensions
    # and CRLFs are framing.  A chunk cut short keeps what arrived.  Then
    # the trailer section's field values (section 7.1.2: field lines, as a
    # head's), as spans into the wire too: a field there may hold a secret.
    spans: list[Span] = []
    at = 0
    while at < len(body):
        line_end = body.find(b"\n", at)
        if line_end < 0:
            break
        size_text = body[at:line_end].split(b";", 1)[0].strip(b" \t\r")
        if not _HEX.fullmatch(size_text):
            break  # not a size
        size = int(size_text, 16)
        if size == 0:
            # The last chunk: its trailer section runs to a blank line.
            section = body[line_end + 1 :]
            blank = _head_end(b"\r\n" + section) - 2
            trailers = header_value_spans(section[: max(blank, 0)], start_line=False)
            offset = base + line_end + 1
            return spans, [(offset + a, offset + b) for a, b in trailers]
        start = line_end + 1
        end = min(start + size, len(body))
        spans.append((base + start, base + end))
        at = end
        if body.startswith(b"\r\n", at):
            at += 2
        elif body.startswith(b"\n", at):
            at += 1
    return spans, []


class Message(NamedTuple):
    """Where one HTTP message (a recorded response's bytes) holds values."""

    #: Field values of the head (and of a chunked body's trailer section),
    #: as spans into the wire.
    headers: list[Span]
    #: Where the content's bytes are in the wire, in order (chunk data only).
    pieces: list[Span]
    #: The content, de-chunked: the pieces joined.
    payload: bytes
    #: The content's values, as spans into :attr:`payload`.
    values: list[Span]


def parse_message(wire: bytes) -> Message:
    """The values of one HTTP message.  The content's values are found in the
    de-chunked content, so a value that chunk framing splits is still whole."""
    head_end = _head_end(wire)
    head = wire[:head_end]
    body = wire[head_end:]
    trailers: list[Span] = []
    if b"chunked" in _field(head, b"transfer-encoding").lower():
        pieces, trailers = _chunk_data(body, head_end)
    else:
        pieces = [(head_end, len(wire))] if body else []
    payload = b"".join(wire[a:b] for a, b in pieces)
    values = body_spans(payload, _field(head, b"content-type"))
    return Message(header_value_spans(head) + trailers, pieces, payload, values)


def put_payload(wire: bytearray, pieces: list[Span], payload: bytes) -> None:
    """Write ``payload`` (of the same length) back into the content pieces."""
    at = 0
    for a, b in pieces:
        wire[a:b] = payload[at : at + b - a]
        at += b - a
