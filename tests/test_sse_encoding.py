"""The SSE encoder (encode_event, encode_comment) against the parser, and the SSEEvent type."""

from __future__ import annotations

from typing import Any

import pytest

from gptalk_proto import LocalProtocolError, SSEEvent, SSEParser, encode_event
from gptalk_proto.sse import encode_comment

from .sse_cases import check_stream, ev

# -- encoder --------------------------------------------------------------------------

NEWLINES = ["\n", "\r\n", "\r"]


@pytest.mark.parametrize("newline", NEWLINES, ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize(
    ("data", "kwargs"),
    [
        ("hello", {}),
        ("", {}),
        ("\n", {}),
        ("\n\n", {}),
        ("a\nb\nc", {}),
        ("  two leading spaces\n three", {}),
        (" ", {}),
        ("data: x\n: not a comment\nid: 9", {}),
        ("\u2026 \U0001f600 \x00 \ufeff", {}),
        ("x", {"event": "add"}),
        ("x", {"event": "  spaced : type "}),
        ("x", {"event": "\u2026"}),
        ("x", {"id": "42"}),
        ("x", {"id": " 7 "}),
        ("x", {"id": ""}),
        ("x", {"retry": 0}),
        ("x", {"retry": 3000}),
        ("x", {"retry": 10**30}),
        ("a\nb", {"event": "e", "id": "i", "retry": 5}),
    ],
)
def test_encode_event_round_trips(data: str, kwargs: dict[str, Any], newline: str) -> None:
    stream = encode_event(data, newline=newline, **kwargs)
    expected = SSEEvent(
        kwargs.get("event", "message"), data, kwargs.get("id", ""), kwargs.get("retry")
    )
    check_stream(stream, [expected], last_event_id=expected.id, retry=expected.retry)


@pytest.mark.parametrize("newline", NEWLINES, ids=["lf", "crlf", "cr"])
def test_encode_many_events_and_comments_round_trip(newline: str) -> None:
    stream = b"".join(
        [
            encode_comment("hi", newline=newline),
            encode_event("a", id="1", newline=newline),
            encode_comment(newline=newline),
            encode_event("b\nc", event="e", retry=10, newline=newline),
            encode_event("", id="", newline=newline),
        ]
    )
    expected = [ev("a", id="1"), ev("b\nc", event="e", id="1", retry=10), ev("", id="")]
    check_stream(stream, expected, last_event_id="", retry=10)


@pytest.mark.parametrize(
    ("data", "kwargs"),
    [
        ("x", {"event": "a\nb"}),
        ("x", {"event": "a\rb"}),
        ("x", {"event": "\ud800"}),
        ("x", {"id": "a\nb"}),
        ("x", {"id": "a\rb"}),
        ("x", {"id": "a\x00b"}),
        ("x", {"id": "\udfff"}),
        ("a\rb", {}),
        ("a\r\nb", {}),
        ("\ud800", {}),
        ("x", {"retry": -1}),
        ("x", {"retry": True}),
        ("x", {"retry": False}),
        ("x", {"retry": 1.5}),
        ("x", {"retry": "5"}),
        ("x", {"newline": "\n\r"}),
        ("x", {"newline": ""}),
        ("x", {"newline": " "}),
    ],
)
def test_encode_event_refusals(data: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        encode_event(data, **kwargs)


@pytest.mark.parametrize(
    ("text", "kwargs"),
    [("a\nb", {}), ("a\rb", {}), ("\ud800", {}), ("x", {"newline": "\n\n"})],
)
def test_encode_comment_refusals(text: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        encode_comment(text, **kwargs)


@pytest.mark.parametrize("newline", NEWLINES, ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("text", ["", "keep-alive", "data: x", " id: 1", "\x00\u2026"])
def test_encode_comment_is_ignored(text: str, newline: str) -> None:
    comment = encode_comment(text, newline=newline)
    assert comment.startswith(b":")
    assert comment.endswith(newline.encode())
    check_stream(comment, [])
    # Even in the middle of an event.
    nl = newline.encode()
    check_stream(b"data: a" + nl + comment + b"data: b" + nl + nl, [ev("a\nb")])


# -- SSEEvent ---------------------------------------------------------------------------


def test_sse_event_defaults_and_fields() -> None:
    assert SSEEvent() == ("message", "", "", None)
    e = SSEEvent(event="e", data="d", id="i", retry=5)
    assert (e.event, e.data, e.id, e.retry) == ("e", "d", "i", 5)
    assert isinstance(e, tuple)


@pytest.mark.parametrize(
    "kwargs", [{"event": 1}, {"data": b"x"}, {"id": 5}, {"event": None}, {"data": None}]
)
def test_sse_event_type_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        SSEEvent(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event": "a\nb"},
        {"event": "a\rb"},
        {"id": "a\nb"},
        {"id": "a\rb"},
        {"id": "a\x00b"},
        {"retry": -1},
        {"retry": True},
    ],
)
def test_sse_event_value_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        SSEEvent(**kwargs)


def test_sse_event_allows_what_the_parser_can_produce() -> None:
    assert SSEEvent(data="a\nb\r\x00").data == "a\nb\r\x00"
    assert SSEEvent(event="a\x00b").event == "a\x00b"
    assert SSEEvent(retry=0).retry == 0


@pytest.mark.parametrize("attr", ["event", "data", "id", "retry", "other"])
def test_sse_event_is_immutable(attr: str) -> None:
    e = SSEEvent("e", "d", "i", 1)
    with pytest.raises(AttributeError):
        setattr(e, attr, "x")


def test_sse_event_equals_parsed_event() -> None:
    (parsed,) = SSEParser().feed(b"event: e\nid: 1\nretry: 5\ndata: d\n\n")
    built = SSEEvent("e", "d", "1", 5)
    assert parsed == built
    assert hash(parsed) == hash(built)
    assert type(parsed) is SSEEvent
