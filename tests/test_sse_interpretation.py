"""SSEParser against the WHATWG rules for interpreting fields, and the wpt format-* streams."""

from __future__ import annotations

import sys

import pytest

from gptalk_proto import LocalProtocolError, SSEEvent, SSEParser
from gptalk_proto.testing._reference_sse import reference_parse

from .sse_cases import CASE_ARGS, case, check_stream, chunkings, ev, feed_all, run_case

# -- comments and field parsing ------------------------------------------------------------


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case("colon-alone", b":\ndata: a\n\n", [ev("a")]),
        case("comment-text", b": hello\n\n", []),
        case("comment-between-data-lines", b"data: a\n: c\ndata: b\n\n", [ev("a\nb")]),
        case("comment-before-blank-line", b"data: a\n:\n\n", [ev("a")]),
        case("comment-looks-like-fields", b":data: x\n:id: 1\n:retry: 5\n:event: e\n\n", []),
        case("comment-nul-unicode", b":\x00\xe2\x80\xa6\xff\n\n", []),
        case("comments-only", b":\r:\r\n:\n", []),
    ],
)
def test_comments(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    run_case(data, events, last_event_id, retry)


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case("data-alone", b"data\n\n", [ev("")]),
        case("data-alone-twice", b"data\ndata\n\n", [ev("\n")]),
        case("data-alone-after-value", b"data: a\ndata\n\n", [ev("a\n")]),
        case("event-alone", b"event\ndata: x\n\n", [ev("x")]),
        case("event-alone-resets-type", b"event: e\nevent\ndata: x\n\n", [ev("x")]),
        case(
            "id-alone-resets-id",
            b"id: 1\ndata: a\n\nid\ndata: b\n\n",
            [ev("a", id="1"), ev("b", id="")],
            "",
        ),
        case("retry-alone-ignored", b"retry\ndata: a\n\n", [ev("a")]),
        case("unknown-alone-ignored", b"foo\ndata: a\n\n", [ev("a")]),
    ],
)
def test_field_without_colon(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    run_case(data, events, last_event_id, retry)


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case("one-space-removed", b"data: x\n\n", [ev("x")]),
        case("no-space", b"data:x\n\n", [ev("x")]),
        case("two-spaces-keep-one", b"data:  x\n\n", [ev(" x")]),
        case("three-spaces-keep-two", b"data:   x\n\n", [ev("  x")]),
        case("space-only", b"data: \n\n", [ev("")]),
        case("two-spaces-only", b"data:  \n\n", [ev(" ")]),
        case("tab-kept", b"data:\tx\n\n", [ev("\tx")]),
        case("nbsp-kept", b"data:\xc2\xa0x\n\n", [ev("\xa0x")]),
        case("trailing-spaces-kept", b"data: x  \n\n", [ev("x  ")]),
        case("event-two-spaces", b"event:  e\ndata: x\n\n", [ev("x", event=" e")]),
        case("id-two-spaces", b"id:  1\ndata: x\n\n", [ev("x", id=" 1")], " 1"),
        case("space-before-colon-is-other-field", b"data : x\ndata: y\n\n", [ev("y")]),
        case("leading-space-is-other-field", b" data: x\ndata: y\n\n", [ev("y")]),
    ],
)
def test_single_leading_space_removed(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    run_case(data, events, last_event_id, retry)


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case("data", b"data: a:b: c\n\n", [ev("a:b: c")]),
        case("data-colon-only", b"data::\n\n", [ev(":")]),
        case("data-colon-space", b"data:: x\n\n", [ev(": x")]),
        case("data-field-lookalike", b"data: data: x\n\n", [ev("data: x")]),
        case("event", b"event: a:b\ndata: x\n\n", [ev("x", event="a:b")]),
        case("id", b"id: 1:2\ndata: x\n\n", [ev("x", id="1:2")], "1:2"),
        case("retry-with-colon-ignored", b"retry: 1:2\ndata: x\n\n", [ev("x")]),
    ],
)
def test_colon_in_value_kept(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    run_case(data, events, last_event_id, retry)


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case("unknown-field", b"foo: bar\ndata: a\n\n", [ev("a")]),
        case("unknown-field-only", b"foo: bar\n\n", []),
        case("Data", b"Data: x\n\n", []),
        case("DATA", b"DATA: x\n\n", []),
        case("Event", b"Event: e\ndata: x\n\n", [ev("x")]),
        case("ID", b"ID: 1\ndata: x\n\n", [ev("x")]),
        case("Id", b"Id: 1\ndata: x\n\n", [ev("x")]),
        case("Retry", b"Retry: 5\ndata: x\n\n", [ev("x")]),
        case("data-with-nul", b"data\x00: x\n\n", []),
        case("nul-data", b"\x00data: x\n\n", []),
        case("dat", b"dat: x\n\n", []),
        case("datas", b"datas: x\n\n", []),
        case("da-ta", b"da-ta: x\n\n", []),
    ],
)
def test_unknown_and_case_variant_fields_ignored(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    run_case(data, events, last_event_id, retry)


# -- the buffers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case("type-set", b"event: add\ndata: x\n\n", [ev("x", event="add")]),
        case(
            "type-reset-after-dispatch",
            b"event: add\ndata: 1\n\ndata: 2\n\n",
            [ev("1", event="add"), ev("2")],
        ),
        case("empty-event-field-is-message", b"event:\ndata: x\n\n", [ev("x")]),
        case("space-only-event-field-is-message", b"event: \ndata: x\n\n", [ev("x")]),
        case("last-event-field-wins", b"event: a\nevent: b\ndata: x\n\n", [ev("x", event="b")]),
        case("later-empty-event-field-wins", b"event: a\nevent:\ndata: x\n\n", [ev("x")]),
        case("event-after-data", b"data: x\nevent: a\n\n", [ev("x", event="a")]),
        case("explicit-message", b"event: message\ndata: x\n\n", [ev("x")]),
        case("reset-by-empty-dispatch", b"event: x\n\ndata: y\n\n", [ev("y")]),
        case("unicode-type", b"event: \xe2\x80\xa6\ndata: x\n\n", [ev("x", event="\u2026")]),
        case("type-with-nul", b"event: a\x00b\ndata: x\n\n", [ev("x", event="a\x00b")]),
    ],
)
def test_event_type_buffer(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    run_case(data, events, last_event_id, retry)


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case("single-line", b"data: a\n\n", [ev("a")]),
        case("joined-with-lf", b"data: a\ndata: b\ndata: c\n\n", [ev("a\nb\nc")]),
        case("one-trailing-lf-removed", b"data\ndata\n\n", [ev("\n")]),
        case("empty-value", b"data:\n\n", [ev("")]),
        case("empty-last-line", b"data: a\ndata:\n\n", [ev("a\n")]),
        case("empty-first-line", b"data:\ndata: a\n\n", [ev("\na")]),
        case("three-empty-lines", b"data\ndata\ndata\n\n", [ev("\n\n")]),
        case("separate-events", b"data: a\n\n\ndata: b\n\n", [ev("a"), ev("b")]),
    ],
)
def test_data_buffer(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    run_case(data, events, last_event_id, retry)


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case("blank-lines-only", b"\n\n\n", []),
        case("event-only", b"event: x\n\n", []),
        case("event-type-buffer-reset", b"event: x\n\ndata: y\n\n", [ev("y")]),
        case("id-only", b"id: 5\n\n", [], "5"),
        case("retry-only", b"retry: 5\n\n", [], "", 5),
        # The retry of an empty block is reported on the next dispatched event.
        case("retry-only-then-event", b"retry: 5\n\ndata: y\n\n", [ev("y", retry=5)], "", 5),
        case("unknown-only", b"foo\n\n", []),
    ],
)
def test_empty_data_buffer_dispatches_nothing(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    run_case(data, events, last_event_id, retry)


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case("set", b"id: 1\ndata: a\n\n", [ev("a", id="1")], "1"),
        case(
            "persists-across-events",
            b"id: 1\ndata: a\n\ndata: b\n\n",
            [ev("a", id="1"), ev("b", id="1")],
            "1",
        ),
        case(
            "changed",
            b"id: 1\ndata: a\n\nid: 2\ndata: b\n\n",
            [ev("a", id="1"), ev("b", id="2")],
            "2",
        ),
        case("after-data-in-block", b"data: a\nid: 7\n\n", [ev("a", id="7")], "7"),
        case("last-in-block-wins", b"id: 1\nid: 2\ndata: a\n\n", [ev("a", id="2")], "2"),
        case(
            "nul-ignored",
            b"id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n",
            [ev("a", id="1"), ev("b", id="1")],
            "1",
        ),
        case("nul-only-ignored", b"id: \x00\ndata: a\n\n", [ev("a")]),
        case(
            "nul-keeps-earlier-in-block", b"id: 3\nid: 4\x00\ndata: a\n\n", [ev("a", id="3")], "3"
        ),
        case(
            "empty-resets",
            b"id: 1\ndata: a\n\nid:\ndata: b\n\n",
            [ev("a", id="1"), ev("b", id="")],
            "",
        ),
        case(
            "space-only-resets",
            b"id: 1\ndata: a\n\nid: \ndata: b\n\n",
            [ev("a", id="1"), ev("b", id="")],
            "",
        ),
        case("updated-by-dispatch-without-event", b"id: 5\n\n", [], "5"),
        case("empty-block-then-event", b"id: 5\n\ndata: a\n\n", [ev("a", id="5")], "5"),
        case(
            "unterminated-block-not-applied",
            b"data: a\n\nid: 2\ndata: b\n",
            [ev("a")],
            "",
        ),
        case("unterminated-id-only-block", b"id: 5\n", [], ""),
        case("unterminated-id-line", b"id: 5", [], ""),
        case("unicode", b"id: \xe2\x80\xa6\ndata: a\n\n", [ev("a", id="\u2026")], "\u2026"),
        case("spaces-kept", b"id:  a b \ndata: a\n\n", [ev("a", id=" a b ")], " a b "),
    ],
)
def test_id_field(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    run_case(data, events, last_event_id, retry)


def test_initial_last_event_id_persists() -> None:
    p = SSEParser(last_event_id="7")
    assert p.last_event_id == "7"
    assert feed_all([b"data: a\n\nid: 8\ndata: b\n\n"], p) == (
        [ev("a", id="7"), ev("b", id="8")],
        "8",
        None,
    )


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case("digits", b"retry: 1\ndata: a\n\n", [ev("a", retry=1)], "", 1),
        case("no-space", b"retry:1000\ndata: a\n\n", [ev("a", retry=1000)], "", 1000),
        case("leading-zeros", b"retry: 007\ndata: a\n\n", [ev("a", retry=7)], "", 7),
        case("zero", b"retry: 0\ndata: a\n\n", [ev("a", retry=0)], "", 0),
        case("zeros", b"retry: 0000\ndata: a\n\n", [ev("a", retry=0)], "", 0),
        case("huge", b"retry: " + b"9" * 100 + b"\n\n", [], "", int("9" * 100)),
        case("last-valid-wins", b"retry: 5\nretry: 6\ndata: a\n\n", [ev("a", retry=6)], "", 6),
        case(
            "per-event-then-none",
            b"retry: 5\ndata: a\n\ndata: b\n\n",
            [ev("a", retry=5), ev("b")],
            "",
            5,
        ),
        case("after-data-in-block", b"data: a\nretry: 5\n\n", [ev("a", retry=5)], "", 5),
        # The field acts when its line ends, even if its block never dispatches.
        case("in-unterminated-block", b"data: a\n\nretry: 5\ndata: b\n", [ev("a")], "", 5),
        case("unterminated-line", b"retry: 5", [], "", None),
    ],
)
def test_retry_field(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    run_case(data, events, last_event_id, retry)


def test_retry_beyond_int_str_digits_limit_is_ignored() -> None:
    # The parser's one documented deviation.  spec: "If the field value
    # consists of only ASCII digits, then interpret the field value as an
    # integer in base ten".  A value with more significant digits than int()
    # converts (4300) is ignored instead, as browsers ignore values their
    # integer type cannot hold; 4300 significant digits still count, leading
    # zeros do not.  (Huge ints cannot be repr()ed, hence the boolean asserts.)
    limit = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300
    over = b"retry: 7\ndata: a\n\nretry: 1" + b"0" * limit + b"\ndata: b\n\n"
    at_limit = b"retry: " + b"0" * 50 + b"1" + b"0" * (limit - 1) + b"\ndata: c\n\n"
    assert reference_parse(over)[2] == 7
    assert reference_parse(at_limit)[2] == 10 ** (limit - 1)
    for name, chunks in chunkings(over):
        events, _, retry = feed_all(chunks)
        assert retry == 7, name
        assert [e.retry for e in events] == [7, None], name
    for name, chunks in chunkings(at_limit):
        events, _, retry = feed_all(chunks)
        assert retry == 10 ** (limit - 1), name
        assert events[0].retry == 10 ** (limit - 1), name


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"  1", id="two-spaces"),
        pytest.param(b" \t1", id="space-tab"),
        pytest.param(b" 1 ", id="trailing-space"),
        pytest.param(b" 1a", id="1a"),
        pytest.param(b" -1", id="negative"),
        pytest.param(b" +1", id="plus"),
        pytest.param(b" 1.5", id="decimal"),
        pytest.param(b" 1e3", id="exponent"),
        pytest.param(b" 0x10", id="hex"),
        pytest.param(b" 1_000", id="underscore"),
        pytest.param(" \u0661\u0662".encode(), id="arabic-indic-digits"),
        pytest.param(" \u00b2".encode(), id="superscript-two"),
        pytest.param(" \uff11".encode(), id="fullwidth-one"),
        pytest.param(b"", id="empty-after-colon"),
        pytest.param(b" ", id="space-only"),
        pytest.param(b"\x00", id="nul"),
    ],
)
def test_retry_invalid_value_ignored(value: bytes) -> None:
    # An ignored retry field leaves the previous value alone.
    stream = b"retry: 3\nretry:" + value + b"\ndata: a\n\n"
    check_stream(stream, [ev("a", retry=3)], retry=3)
    check_stream(b"retry:" + value + b"\ndata: a\n\n", [ev("a")], retry=None)


# -- end of stream, feed, close ------------------------------------------------------------


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case("unterminated-block", b"data: a\n", []),
        case("unterminated-line", b"data: a", []),
        case("unterminated-crlf-block", b"data: a\r\n", []),
        case("complete-then-unterminated", b"data: a\n\ndata: b\n", [ev("a")]),
        case("empty-stream", b"", []),
    ],
)
def test_unterminated_block_never_dispatched(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    run_case(data, events, last_event_id, retry)


def test_close_discards_pending_and_returns_nothing() -> None:
    p = SSEParser()
    assert p.feed(b"event: e\nid: 1\ndata: a\ndata: b") == []
    assert p.close() == []
    assert p.last_event_id == ""


def test_feed_empty_is_a_no_op() -> None:
    p = SSEParser()
    assert p.feed(b"") == []
    assert p.feed(b"data: a\r") == []
    assert p.feed(b"") == []
    assert p.feed(b"\n") == []  # still the LF of the CRLF
    assert p.feed(b"") == []
    assert p.feed(b"\n") == [ev("a")]
    assert p.feed(b"") == []
    assert (p.last_event_id, p.retry) == ("", None)


@pytest.mark.parametrize("data", [b"data: a\n\n", b""])
def test_feed_after_close_is_local_error(data: bytes) -> None:
    p = SSEParser()
    p.feed(b"data: a\n")
    p.close()
    with pytest.raises(LocalProtocolError):
        p.feed(data)


# -- web-platform-tests eventsource/format-* -------------------------------------------------
# message.py answers ``message + "\n\n" + "\n"`` (``message + "\n"`` with
# newline=none).  The streams below are rebuilt from memory of wpt; the ones
# marked "approximate" may differ in detail from the upstream files.

_LONG = b"x" * 2048


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case(
            "format-bom",
            b"\xef\xbb\xbfdata:1\n\n\xef\xbb\xbfdata:2\n\ndata:3\n\n\n",
            [ev("1"), ev("3")],
        ),
        case(
            "format-bom-2",
            b"\xef\xbb\xbf\xef\xbb\xbfdata:1\n\ndata:2\n\ndata:3\n\n\n",
            [ev("2"), ev("3")],
        ),
        case(
            "format-comments",
            b"data:1\r:\x00\n:\r\ndata:2\n:"
            + _LONG
            + b"\rdata:3\n:data:fail\r:"
            + _LONG
            + b"\ndata:4\n\n",
            [ev("1\n2\n3\n4")],
        ),
        case(
            "format-data-before-final-empty-line",
            b"retry:1000\ndata:test1\n\nid:test\ndata:test2\n",
            [ev("test1", retry=1000)],
            "",
            1000,
        ),
        case(
            "format-field-data",
            b"data:\n\ndata\ndata\n\ndata:test\n\n\n",
            [ev(""), ev("\n"), ev("test")],
        ),
        case(
            "format-field-event",
            b"event:test\ndata:x\n\ndata:x\n\n\n",
            [ev("x", event="test"), ev("x")],
        ),
        case("format-field-event-empty", b"event: \ndata:data\n\n\n", [ev("data")]),
        case(
            "format-field-id",  # last-event-id.py, first connection
            b"id: \xe2\x80\xa6\nretry: 200\ndata: hello\n\n",
            [ev("hello", id="\u2026", retry=200)],
            "\u2026",
            200,
        ),
        case(
            "format-field-id-2",  # approximate
            b"id:1\ndata:1\n\nid:\ndata:2\n\n\n",
            [ev("1", id="1"), ev("2", id="")],
            "",
        ),
        case(
            "format-field-parsing",
            b"data:\x00\ndata:  2\rData:1\ndata\x00:2\ndata:1\r\x00data:4\nda-ta:3\rdata_5\n"
            b"data:3\rdata:\r\n data:32\ndata:4\n\n\n",
            [ev("\x00\n 2\n1\n3\n\n4")],
        ),
        case(
            "format-field-retry",
            b"retry:03000\ndata:x\n\n\n",
            [ev("x", retry=3000)],
            "",
            3000,
        ),
        case(
            "format-field-retry-bogus",
            b"retry:3000\nretry:1000x\ndata:x\n\n\n",
            [ev("x", retry=3000)],
            "",
            3000,
        ),
        case("format-field-retry-empty", b"retry\ndata:test\n\n\n", [ev("test")]),
        case(
            "format-field-unknown",
            b"data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\n"
            b"data:test\n\n\n",
            [ev("test\n\ntest")],
        ),
        case(
            "format-leading-space", b"data:\ttest\rdata: \ndata:test\n\n\n", [ev("\ttest\n\ntest")]
        ),
        case(
            "format-newlines",
            b"data:test\r\ndata\ndata:test\r\n\r\n\n\n",
            [ev("test\n\ntest")],
        ),
        case("format-null-character", b"data:\x00\n\n\n\n", [ev("\x00")]),
        case("format-utf-8", b"data:ok\xe2\x80\xa6\n\n\n", [ev("ok\u2026")]),
        case(
            "event-data",  # message2.py, one round of its loop
            b"data:msg\ndata: msg\n\n:\nfalsefield:msg\n\nfalsefield:msg\nData:data\n\n"
            b"data\n\ndata:end\n\n",
            [ev("msg\nmsg"), ev(""), ev("end")],
        ),
    ],
)
def test_wpt_format(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    run_case(data, events, last_event_id, retry)


def test_wpt_format_field_id_reconnection() -> None:
    # The reconnection carries Last-Event-ID; the server echoes it as data.
    p = SSEParser(last_event_id="\u2026")
    assert feed_all([b"data: \xe2\x80\xa6\n\n"], p) == ([ev("\u2026", id="\u2026")], "\u2026", None)


@pytest.mark.parametrize("id_value", ["\x00", "x\x00", "\x00x", "x\x00x", " \x00"])
def test_wpt_format_field_id_null(id_value: str) -> None:
    stream = b"id: " + id_value.encode() + b"\nretry: 200\ndata: hello\n\n"
    check_stream(stream, [ev("hello", retry=200)], retry=200)


def test_wpt_event_data_in_writes() -> None:
    # message2.py writes its stream in these pieces.
    writes = [b"data:msg", b"\n", b"data: msg", b"\n\n", b":", b"\n", b"falsefield:msg", b"\n\n"]
    writes += [b"falsefield:msg", b"\n", b"Data:data", b"\n\n", b"data", b"\n\n", b"data:end"]
    writes += [b"\n\n"]
    assert feed_all(writes) == ([ev("msg\nmsg"), ev(""), ev("end")], "", None)
