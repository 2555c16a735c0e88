"""SSEParser against the WHATWG parsing rules (BOM, UTF-8, line ends) and the size caps."""

from __future__ import annotations

from typing import Any

import pytest

from gptalk_proto import (
    RemoteProtocolError,
    SSEEvent,
    SSEEventTooLarge,
    SSELineTooLong,
    SSEParser,
    SSESizeError,
)
from gptalk_proto.testing._reference_sse import reference_parse

from .sse_cases import CASE_ARGS, bytewise, case, chunkings, ev, feed_all, outcome, run_case

# -- BOM -------------------------------------------------------------------------

BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case("stripped", BOM + b"data: x\n\n", [ev("x")]),
        case("bom-only", BOM, []),
        case("bom-then-blank-line", BOM + b"\ndata: x\n\n", [ev("x")]),
        # The second BOM is U+FEFF, part of the field name "\ufeffdata".
        case("second-bom-kept", BOM + BOM + b"data: x\n\ndata: y\n\n", [ev("y")]),
        case("second-bom-kept-in-value", BOM + b"data: " + BOM + b"x\n\n", [ev("\ufeffx")]),
        case("bom-not-at-start", b"data: x\n\n" + BOM + b"data: y\n\n", [ev("x")]),
        case("bom-after-blank-line", b"\n" + BOM + b"data: y\n\n", []),
        # Not a BOM: the bytes decode (with replacement) into the field name.
        case("partial-bom-2-bytes", b"\xef\xbbdata: x\n\ndata: y\n\n", [ev("y")]),
        case("partial-bom-1-byte", b"\xefdata: x\n\ndata: y\n\n", [ev("y")]),
        case("partial-bom-own-line", b"\xef\xbb\ndata: x\n\n", [ev("x")]),
        case("partial-bom-unterminated", b"\xef\xbb", []),
        case("bom-lookalike-U+FEFE", b"\xef\xbb\xbedata: x\n\ndata: y\n\n", [ev("y")]),
    ],
)
def test_bom(data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None) -> None:
    run_case(data, events, last_event_id, retry)


@pytest.mark.parametrize(
    ("chunks", "events"),
    [
        ([b"\xef", b"\xbb\xbfdata: x\n\n"], [ev("x")]),
        ([b"\xef\xbb", b"\xbfdata: x\n\n"], [ev("x")]),
        ([b"\xef", b"\xbb", b"\xbf", b"data: x\n\n"], [ev("x")]),
        ([b"\xef", b"", b"\xbb\xbf", b"", b"data: x\n\n"], [ev("x")]),
        ([BOM, BOM + b"data: x\n\n"], []),
        ([b"\xef", b"\xbb\xbf\xef", b"\xbb\xbfdata: x\n\n"], []),
        ([b"\xef", b"\xbbdata: x\n\n"], []),
        ([b"\xef\xbb", b"data: x\n\n"], []),
    ],
)
def test_bom_split_across_chunks(chunks: list[bytes], events: list[SSEEvent]) -> None:
    assert feed_all(chunks) == (events, "", None)
    assert reference_parse(b"".join(chunks)) == (events, "", None)


# -- UTF-8 decoding ------------------------------------------------------------------

FFFD = "\ufffd"


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case("invalid-byte-ff", b"data: a\xffb\n\n", [ev(f"a{FFFD}b")]),
        case("lone-continuation-byte", b"data: \x80\n\n", [ev(FFFD)]),
        case(
            "multibyte-2-3-4-bytes",  # split across chunks by check_stream
            b"data: \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\n\n",
            [ev("\u00e9\u20ac\U0001f600")],
        ),
        case("truncated-before-lf", b"data: \xe2\x82\ndata: b\n\n", [ev(f"{FFFD}\nb")]),
        case("truncated-before-cr", b"data: \xf0\x9f\x98\rdata: b\r\r", [ev(f"{FFFD}\nb")]),
        case("truncated-before-crlf", b"data: a\xe2\r\n\r\n", [ev(f"a{FFFD}")]),
        case("truncated-then-ascii", b"data: \xe2\x82x\n\n", [ev(f"{FFFD}x")]),
        case("surrogate-ed-a0-80", b"data: \xed\xa0\x80\n\n", [ev(FFFD * 3)]),
        case("cesu-surrogate-pair", b"data: \xed\xa0\xbd\xed\xb8\x80\n\n", [ev(FFFD * 6)]),
        case("overlong-c0-af", b"data: \xc0\xaf\n\n", [ev(FFFD * 2)]),
        case("overlong-e0-80-af", b"data: \xe0\x80\xaf\n\n", [ev(FFFD * 3)]),
        case("above-u10ffff", b"data: \xf4\x90\x80\x80\n\n", [ev(FFFD * 4)]),
        case("f5-byte", b"data: \xf5\n\n", [ev(FFFD)]),
        case("invalid-in-event-type", b"event: \xff\ndata: x\n\n", [ev("x", event=FFFD)]),
        case("invalid-in-id", b"id: \xc3\ndata: x\n\n", [ev("x", id=FFFD)], FFFD),
        case("invalid-in-field-name", b"dat\xe1\ndata: x\n\n", [ev("x")]),
        case("truncated-at-eof", b"data: x\n\ndata: \xe2\x82", [ev("x")]),
        case("nul-kept", b"data: \x00\n\n", [ev("\x00")]),
    ],
)
def test_utf8_decoding(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    run_case(data, events, last_event_id, retry)


# -- line ends -----------------------------------------------------------------------


@pytest.mark.parametrize(
    CASE_ARGS,
    [
        case("lf", b"data: a\ndata: b\n\n", [ev("a\nb")]),
        case("cr", b"data: a\rdata: b\r\r", [ev("a\nb")]),
        case("crlf", b"data: a\r\ndata: b\r\n\r\n", [ev("a\nb")]),
        # CR ends "data: a", then CRLF ends an empty line: a dispatch.
        case("cr-cr-lf", b"data: a\r\r\ndata: b\n\n", [ev("a"), ev("b")]),
        case("lf-cr", b"data: a\n\rdata: b\n\n", [ev("a"), ev("b")]),
        case("crlf-lf", b"data: a\r\n\ndata: b\n\n", [ev("a"), ev("b")]),
        case("lf-cr-lf-is-two-line-ends", b"data: a\n\r\ndata: b\n\n", [ev("a"), ev("b")]),
        case("mixed", b"data: a\r\ndata: b\rdata: c\ndata: d\r\n\r", [ev("a\nb\nc\nd")]),
        case("cr-as-last-byte-of-stream", b"data: a\n\r", [ev("a")]),
        case("lone-cr-mid-line", b"data: a\rb\n\n", [ev("a")]),
        case("many-blank-lines", b"\n\r\n\r\n\rdata: a\n\n\n\n", [ev("a")]),
        case("no-final-blank-line", b"data: a\r\n", []),
        case(
            "other-breaks-are-not-line-ends",  # VT, FF, NEL, U+2028, U+2029
            b"data: a\x0bb\x0cc\xc2\x85d\xe2\x80\xa8e\xe2\x80\xa9f\n\n",
            [ev("a\x0bb\x0cc\x85d\u2028e\u2029f")],
        ),
    ],
)
def test_line_ends(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    run_case(data, events, last_event_id, retry)


def test_cr_as_last_byte_of_chunk_ends_the_line_at_once() -> None:
    p = SSEParser()
    assert p.feed(b"data: a\r") == []
    assert p.feed(b"\n") == []  # the second half of a CRLF, not a blank line
    assert p.feed(b"data: b\r") == []
    assert p.feed(b"\r") == [ev("a\nb")]  # a lone CR: a blank line, dispatched now
    assert p.feed(b"\n") == []  # CRLF again: no second blank line
    assert p.feed(b"data: c\n\r") == [ev("c")]
    assert p.feed(b"\n") == []
    assert p.feed(b"data: d\n\n") == [ev("d")]


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"],
        [b"data: a\r", b"", b"\ndata: b\r\n\r", b"", b"\n"],
        [b"data: a\r", b"\n", b"data: b\r", b"\n", b"\r", b"\n"],
    ],
)
def test_crlf_split_across_chunks(chunks: list[bytes]) -> None:
    assert feed_all(chunks) == ([ev("a\nb")], "", None)


# -- caps ---------------------------------------------------------------------------------

CAP = 4096


def kib_chunks(data: bytes) -> list[bytes]:
    return [data[i : i + 1024] for i in range(0, len(data), 1024)]


CAP_CHUNKINGS = {
    "whole": lambda data: [data],
    "bytewise": bytewise,
    "1KiB": kib_chunks,
}


@pytest.mark.parametrize("how", CAP_CHUNKINGS)
@pytest.mark.parametrize("end", [b"\n\n", b"\r\n\r\n", b"\r\r", b""])
def test_line_over_cap_raises(how: str, end: bytes) -> None:
    stream = b"data: a\n\ndata: " + b"x" * (CAP - 6 + 1) + end
    p = SSEParser(max_line_size=CAP)
    assert outcome(CAP_CHUNKINGS[how](stream), p) == ([ev("a")], "", None, SSELineTooLong)


@pytest.mark.parametrize("how", CAP_CHUNKINGS)
@pytest.mark.parametrize("end", [b"\n\n", b"\r\n\r\n", b"\r\r"])
def test_line_exactly_at_cap_is_fine(how: str, end: bytes) -> None:
    stream = BOM + b"data: " + b"x" * (CAP - 6) + end  # the BOM is not part of the line
    p = SSEParser(max_line_size=CAP)
    assert outcome(CAP_CHUNKINGS[how](stream), p) == ([ev("x" * (CAP - 6))], "", None, None)


@pytest.mark.parametrize("how", CAP_CHUNKINGS)
def test_line_cap_counts_bytes(how: str) -> None:
    fits = "data: \u00e9\u00e9\n\n".encode()  # 10 bytes before the line end
    assert outcome(CAP_CHUNKINGS[how](fits), SSEParser(max_line_size=10))[3] is None
    over = "data: \u00e9\u00e9\u00e9\n\n".encode()
    assert outcome(CAP_CHUNKINGS[how](over), SSEParser(max_line_size=10))[3] is SSELineTooLong


@pytest.mark.parametrize("how", CAP_CHUNKINGS)
def test_event_over_cap_raises(how: str) -> None:
    p = SSEParser(max_event_size=10)
    fits = b"data: 12345\ndata: 1234\n\n"  # "12345\n1234": 10 characters
    assert outcome(CAP_CHUNKINGS[how](fits), p) == ([ev("12345\n1234")], "", None, None)
    p = SSEParser(max_event_size=10)
    over = b"data: a\n\ndata: 12345\ndata: 12345\n\n"
    assert outcome(CAP_CHUNKINGS[how](over), p) == ([ev("a")], "", None, SSEEventTooLarge)


@pytest.mark.parametrize("how", CAP_CHUNKINGS)
def test_event_cap_counts_characters(how: str) -> None:
    fits = ("data: " + "\u00e9" * 10 + "\n\n").encode()
    p = SSEParser(max_event_size=10)
    assert outcome(CAP_CHUNKINGS[how](fits), p) == ([ev("\u00e9" * 10)], "", None, None)


@pytest.mark.parametrize("how", CAP_CHUNKINGS)
def test_event_over_cap_raises_before_its_blank_line(how: str) -> None:
    stream = b"data: 123456\ndata: 12345\n"
    p = SSEParser(max_event_size=10)
    assert outcome(CAP_CHUNKINGS[how](stream), p)[3] is SSEEventTooLarge


def test_size_error_events_hold_earlier_events_of_the_same_chunk() -> None:
    p = SSEParser(max_line_size=16)
    assert p.feed(b"data: 0\n\n") == [ev("0")]
    with pytest.raises(SSELineTooLong) as info:
        p.feed(b"data: a\n\ndata: b\n\n" + b"x" * 17)
    assert info.value.events == [ev("a"), ev("b")]
    assert isinstance(info.value, SSESizeError)
    assert isinstance(info.value, RemoteProtocolError)

    p = SSEParser(max_event_size=4)
    assert p.feed(b"data: 0\n\n") == [ev("0")]
    with pytest.raises(SSEEventTooLarge) as info2:
        p.feed(b"data: a\n\ndata: b\n\ndata: 12345\n\ndata: c\n\n")
    assert info2.value.events == [ev("a"), ev("b")]


@pytest.mark.parametrize(
    ("caps", "stream"),
    [
        ({"max_line_size": 8}, b"data: 123456789\n"),
        ({"max_line_size": 8}, b"data: 123456789"),
        ({"max_event_size": 4}, b"data: 12345\n"),
        ({"max_event_size": 4}, b"data: 123\ndata: 4\n\n"),
    ],
)
@pytest.mark.parametrize("then", [b"data: ok\n\n", b""])
def test_parser_unusable_after_error(caps: dict[str, Any], stream: bytes, then: bytes) -> None:
    p = SSEParser(**caps)
    with pytest.raises(SSESizeError):
        p.feed(stream)
    with pytest.raises(RemoteProtocolError):
        p.feed(then)
    with pytest.raises(RemoteProtocolError):
        p.feed(then)


def test_error_class_does_not_depend_on_chunking() -> None:
    # The data buffer passes max_event_size at the end of line 1, before line 2
    # (over max_line_size) is complete: the event error comes first in the
    # stream, whatever the chunking.
    stream = b"data: " + b"a" * 15 + b"\n" + b"x" * 30 + b"\n"
    for name, chunks in chunkings(stream):
        result = outcome(chunks, SSEParser(max_line_size=25, max_event_size=10))
        assert result == ([], "", None, SSEEventTooLarge), name


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"id: 1\ndata: " + b"a" * 15 + b"\n\n", id="last-event-id"),
        pytest.param(b"data: " + b"a" * 15 + b"\nretry: 5\n", id="retry"),
    ],
)
def test_state_after_error_does_not_depend_on_chunking(stream: bytes) -> None:
    # A client reconnects with parser.last_event_id after an error: it must
    # not depend on how the bytes happened to arrive.
    whole = outcome([stream], SSEParser(max_event_size=10))
    for name, chunks in chunkings(stream):
        assert outcome(chunks, SSEParser(max_event_size=10)) == whole, name


@pytest.mark.timeout(60)
def test_long_line_in_small_chunks_is_linear() -> None:
    # Not timed: the unfinished line is kept as a list of pieces, one per
    # chunk, and joined once when its line end comes.
    p = SSEParser()
    chunk = b"x" * 1024
    assert p.feed(b"data: ") == []
    for fed in range(1, 4096 + 1):
        assert p.feed(chunk) == []
        assert len(p._pending) <= fed + 1
        assert p._pending_len == 6 + fed * 1024
    (event,) = p.feed(b"\n\n")
    assert len(event.data) == 4 * 1024 * 1024
