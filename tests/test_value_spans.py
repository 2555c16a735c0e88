"""Where redaction looks: values, never syntax; found in one pass, on any cut."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_proto.cassette._value_spans import (
    header_value_spans,
    json_string_spans,
    parse_message,
    query_value_spans,
    sse_data_spans,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def string_values(value: Any) -> list[str]:
    """The string values (not keys) of a JSON value, in document order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in string_values(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in string_values(item)]
    return []


@settings(max_examples=200, deadline=None)
@given(value=st.dictionaries(st.text(max_size=8), json_values, max_size=5), ascii=st.booleans())
def test_json_string_spans_are_the_string_values(value: dict[str, Any], ascii: bool) -> None:
    data = json.dumps(value, ensure_ascii=ascii).encode()
    found = [json.loads(b'"' + data[a:b] + b'"') for a, b in json_string_spans(data)]
    assert found == [s for s in string_values(value) if s]


@settings(max_examples=200, deadline=None)
@given(value=st.dictionaries(st.text(max_size=8), json_values, max_size=5), cut=st.integers(0))
def test_a_cut_json_text_gives_the_values_so_far(value: dict[str, Any], cut: int) -> None:
    data = json.dumps(value).encode()
    cut %= len(data) + 1
    spans = json_string_spans(data[:cut])
    whole = json_string_spans(data)
    # Every span of the cut text is a span of the whole, or runs to the cut
    # (the string the cut falls into), or is a key whose ":" has not arrived.
    for start, end in spans:
        assert (
            (start, end) in whole
            or end == cut
            or (data[end : end + 1] == b'"' and not data[end + 1 : cut].strip())
        )
    # And no value of the whole that ended before the cut is missing.
    for start, end in whole:
        if end + 1 < cut and data[end + 1 : cut].strip():
            assert (start, end) in spans


def test_syntax_is_never_a_span() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\ncontent-length: 12\r\n"
        b"x-key:  v1 \r\nset-cookie: a=b\r\n\r\n"
    )
    assert [head[a:b] for a, b in header_value_spans(head)] == [b"v1", b"a=b"]
    target = b"/api/stream?token=abc&x=&y&z=1#frag"
    assert [target[a:b] for a, b in query_value_spans(target)] == [b"abc", b"1"]
    payload = (
        b'data: {"data": "value", "k": ["a", 1]}\r\nevent: data\r\n: data\rdata:text\ndata\n\n'
    )
    assert [payload[a:b] for a, b in sse_data_spans(payload)] == [b"value", b"a", b"text"]


def test_values_split_by_chunk_framing_are_whole() -> None:
    payload = b'data: {"content": "one secret value"}\n\ndata: [DONE]\n\n'
    body = b"".join(
        b"%x;ext=1\r\n%s\r\n" % (len(payload[i : i + 5]), payload[i : i + 5])
        for i in range(0, len(payload), 5)
    )
    wire = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + body + b"0\r\nx-trailer: t\r\n\r\n"
    )
    message = parse_message(wire)
    assert message.payload == payload
    assert [payload[a:b] for a, b in message.values] == [b"one secret value"]
    # Cut anywhere, the message still parses to what arrived.
    for cut in range(len(wire)):
        partial = parse_message(wire[:cut])
        assert payload.startswith(partial.payload)


def test_a_trailer_sections_field_values_are_values() -> None:
    """RFC 9112 section 7.1.2: trailer fields are field lines, as a head's;
    a secret in one (a session token sent after the stream) is a value."""
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    body = b"5\r\ndata:\r\n0\r\nx-session: s3cr3t-value\r\ncontent-length: 9\r\n\r\n"
    wire = head + body
    message = parse_message(wire)
    assert [wire[a:b] for a, b in message.headers][-1:] == [b"s3cr3t-value"]
    assert message.payload == b"data:"
    # Cut inside the trailer section: what arrived of it.
    for cut in range(len(head), len(wire)):
        for _, b in parse_message(wire[:cut]).headers:
            assert b <= cut
    # No trailer section at all: no value past the last chunk.
    bare = parse_message(head + b"5\r\ndata:\r\n0\r\n\r\n")
    assert bare.headers == parse_message(head).headers
