"""SSEParser against the WHATWG "Server-sent events" parsing rules, rule by rule.

Every stream here goes through :func:`check_stream`, which feeds it whole, one
byte at a time and at seeded random split points, and also runs the reference
parser on it: all must give the same events, last event ID and retry.

Also here: the wpt ``eventsource/format-*`` streams, the size caps, the
encoder and the ``SSEEvent`` type.  Hypothesis properties are in
``test_sse_properties.py``.
"""

from __future__ import annotations

import itertools
import random
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from gptalk_proto import (
    LocalProtocolError,
    RemoteProtocolError,
    SSEEvent,
    SSEEventTooLarge,
    SSELineTooLong,
    SSEParser,
    SSESizeError,
    encode_comment,
    encode_event,
)
from gptalk_proto.testing._reference_sse import reference_parse

Outcome = tuple[list[SSEEvent], str, "int | None"]

# -- helpers -------------------------------------------------------------------


def ev(data: str, event: str = "message", id: str = "", retry: int | None = None) -> SSEEvent:
    """Shorthand for an expected event."""
    return SSEEvent(event, data, id, retry)


def feed_all(chunks: Iterable[bytes], parser: SSEParser | None = None) -> Outcome:
    """Feed every chunk, close, and return (events, last_event_id, retry)."""
    parser = parser if parser is not None else SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    assert parser.close() == []
    return events, parser.last_event_id, parser.retry


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def random_chunks(data: bytes, seed: int) -> list[bytes]:
    """Cut ``data`` at seeded random points (repeated points give empty chunks)."""
    rng = random.Random(seed)
    cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(1, max(1, len(data)))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def chunkings(data: bytes, seeds: int = 6) -> list[tuple[str, list[bytes]]]:
    """The whole stream, one byte at a time, and ``seeds`` random splits."""
    ways = [("whole", [data]), ("bytewise", bytewise(data))]
    ways += [(f"seed-{seed}", random_chunks(data, seed)) for seed in range(seeds)]
    return ways


def check_stream(
    data: bytes,
    events: Sequence[SSEEvent],
    *,
    last_event_id: str = "",
    retry: int | None = None,
) -> None:
    """Assert every chunking of ``data`` (and the reference parser) gives this result."""
    expected = (list(events), last_event_id, retry)
    for name, chunks in chunkings(data):
        assert feed_all(chunks) == expected, f"chunking {name}: {chunks!r:.300}"
    assert reference_parse(data) == expected, "reference parser"


def case(
    id_: str,
    data: bytes,
    events: Sequence[SSEEvent],
    last_event_id: str = "",
    retry: int | None = None,
) -> Any:
    return pytest.param(data, events, last_event_id, retry, id=id_)


CASE_ARGS = ("data", "events", "last_event_id", "retry")


def run_case(
    data: bytes, events: Sequence[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    check_stream(data, events, last_event_id=last_event_id, retry=retry)


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


# -- caps ---------------------------------------------------------------------------------

CAP = 4096


def kib_chunks(data: bytes) -> list[bytes]:
    return [data[i : i + 1024] for i in range(0, len(data), 1024)]


CAP_CHUNKINGS = {
    "whole": lambda data: [data],
    "bytewise": bytewise,
    "1KiB": kib_chunks,
}


def outcome(
    chunks: Iterable[bytes], parser: SSEParser
) -> tuple[list[SSEEvent], str, int | None, type[Exception] | None]:
    """(events incl. the error's .events, last_event_id, retry, error class)."""
    events: list[SSEEvent] = []
    try:
        for chunk in chunks:
            events += parser.feed(chunk)
    except SSESizeError as exc:
        return events + exc.events, parser.last_event_id, parser.retry, type(exc)
    parser.close()
    return events, parser.last_event_id, parser.retry, None


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
