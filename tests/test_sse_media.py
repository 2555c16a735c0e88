"""'Is this response an event stream?' is decided once (gptalk_proto.sse.is_event_stream),
and the cassette's reader and the recorder follow it."""

from __future__ import annotations

import pytest

from gptalk_proto.cassette import Recorder
from gptalk_proto.cassette._response import parse_response
from gptalk_proto.sse import EVENT_STREAM, is_event_stream, media_type


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
