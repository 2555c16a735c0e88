"""'Is this response an event stream?' is decided once (gptalk_proto.sse.is_event_stream),
and the cassette's reader and the recorder follow it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptalk_proto.cassette import Recorder
from gptalk_proto.cassette._response import parse_response
from gptalk_proto.sse import EVENT_STREAM, _media, is_event_stream, media_type


@pytest.mark.parametrize(
    "value",
    [
        "text/event-stream",
        "Text/Event-Stream",
        " text/event-stream ; charset=utf-8",
        b"TEXT/EVENT-STREAM;x=1",
    ],
)
def test_event_stream_spellings(value: str | bytes) -> None:
    assert is_event_stream(value)
    assert media_type(value) == EVENT_STREAM


@pytest.mark.parametrize(
    "value", ["", "text/plain", "text/event-streams", "application/json; text/event-stream"]
)
def test_not_event_streams(value: str) -> None:
    assert not is_event_stream(value)


def response(content_type: str) -> bytes:
    body = b'data: {"content": "a"}\n\ndata: {"content": "b"}\n\n'
    head = f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


@pytest.mark.parametrize(
    ("content_type", "streams"), [("Text/Event-Stream; charset=utf-8", True), ("text/plain", False)]
)
def test_the_cassette_reader_and_the_recorder_agree(content_type: str, streams: bool) -> None:
    wire = response(content_type)
    _, _, _, events = parse_response("GET", wire)
    assert len(events) == (2 if streams else 0)
    recorder = Recorder("http://example", max_events=1)
    number = recorder.open_connection()
    recorder.sent(number, b"GET /s HTTP/1.1\r\nhost: example\r\n\r\n", 0.0)
    keep = recorder.received(number, wire, 0.1)
    # A stream stops at the first event (max_events=1); anything else is kept whole.
    assert (keep < len(wire)) is streams


@given(st.binary(max_size=2 * _media.MAX_KNOWN_CONTENT_TYPE_LENGTH))
def test_a_known_bytes_value_has_the_media_type_of_its_text(value: bytes) -> None:
    # Short bytes values are kept (an lru cache), longer ones and str worked
    # out each time: asked twice (the second time from the cache when short),
    # a bytes value, its bytearray and its latin-1 text give one media type.
    text = value.decode("latin-1")
    expected = text.split(";", 1)[0].strip().lower()
    assert media_type(value) == media_type(value) == expected
    assert media_type(bytearray(value)) == media_type(text) == expected
    assert _media._known_media_type.cache_info().currsize <= _media.MAX_KNOWN_CONTENT_TYPES


def test_the_known_media_types_stay_bounded() -> None:
    for n in range(3 * _media.MAX_KNOWN_CONTENT_TYPES):
        assert media_type(b"Text/X%d; q=1" % n) == f"text/x{n}"
    info = _media._known_media_type.cache_info()
    assert info.currsize == info.maxsize == _media.MAX_KNOWN_CONTENT_TYPES
