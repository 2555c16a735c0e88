"""``GrowingValues.decode_blocks``: a read's common blocks proved and decoded in one pass.

Once a line's bytes after "data: " are proved to start with the previous
value's (less its tail), the parser's line-end search (and, for CRLF streams,
its lone-CR search) runs only past them.  The parser with the grower handing
over Extensions must give what the reference parser and a parser without a
grower give, for hostile streams fed whole, byte by byte and at random splits:
lone CRs and bare LFs in the new bytes, rewrites that do not extend the
previous value, values that shrink, a UTF-8 continuation byte or invalid
UTF-8 where the new bytes start, a non-ASCII tail, other fields, data lines
with no blank line between them, and line caps.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
from gptalk_proto import SSEParser, SSESizeError
from gptalk_proto.sse import _growing
from gptalk_proto.sse._growing import Extension, whole
from gptalk_proto.sse._lines import LONG_LINE
from gptalk_proto.testing._reference_sse import reference_parse

from .sse_cases import bytewise, cut_at

# What each step of a stream does to the value before it (see _streams).
_INSERTS = [b"ab", b"\\u00e9", b"\xc3\xa9", b"\xe2\x9c\x93", b"", b"x" * 40]
_HOSTILE_INSERTS = [
    b"\r",  # a lone CR in the new bytes
    b"a\rb",
    b"\n",  # a bare LF: the line ends there
    b"\r\n",
    b"\x80",  # a continuation byte where the new bytes start
    b"\xc3",  # a sequence cut short
    b"\xff\xfe",  # never UTF-8
    b"\xa9x",
]


@st.composite
def _streams(draw: st.DrawFn) -> tuple[bytes, str]:
    """A stream of long GPTalk-like values, each mostly the one before with
    bytes inserted before its closing '"}', and hostile steps among them."""
    ends = draw(st.sampled_from(["lf", "crlf", "mixed"]))
    text = ("caf\u00e9 \u2713 " * 300).encode()  # long enough to be reused (2 KB+)
    value = b'{"content": "' + text + b'"}'
    blocks: list[bytes] = []

    def end() -> bytes:
        if ends == "mixed":
            return draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
        return b"\r\n" if ends == "crlf" else b"\n"

    for _ in range(draw(st.integers(2, 14))):
        kind = draw(
            st.sampled_from(
                ["grow"] * 6
                + ["hostile", "rewrite", "shrink", "tail", "field", "no-blank", "short"]
            )
        )
        line = value
        if kind == "grow":
            value = value[:-2] + draw(st.sampled_from(_INSERTS)) + value[-2:]
            line = value
        elif kind == "hostile":
            value = value[:-2] + draw(st.sampled_from(_HOSTILE_INSERTS)) + value[-2:]
            line = value
        elif kind == "rewrite":
            at = draw(st.integers(13, len(value) - 3))
            value = value[:at] + b"Z" + value[at + 1 :]
            line = value
        elif kind == "shrink":
            value = value[: len(value) - draw(st.integers(3, 40))] + value[-2:]
            line = value
        elif kind == "tail":
            line = value[:-2] + b"\xc3\xa9"  # a non-ASCII tail, once
        elif kind == "field":
            blocks.append(draw(st.sampled_from([b"id: 7", b"event: x", b": note", b"retry: 5"])))
            blocks.append(end())
        elif kind == "no-blank":
            blocks.append(b"data: " + line + end())  # another data line follows at once
        else:
            line = b"short"
        blocks.append(b"data: " + line + end() + end())
    return b"".join(blocks), ends


def _parser(*, extensions: bool, max_line: int | None = None) -> SSEParser:
    caps = {} if max_line is None else {"max_line_size": max_line, "max_event_size": max_line}
    if not extensions:
        return SSEParser(**caps)  # type: ignore[arg-type]
    parser = SSEParser(growing_tail=g.ContentDecoder.growing_tail, **caps)  # type: ignore[arg-type]
    assert parser._grower is not None
    g.ContentDecoder().follow_extensions(parser._grower)
    return parser


def _outcome(
    parser: SSEParser, chunks: list[bytes], lazy: bool = False
) -> tuple[list[g.SSEEvent], str, type[Exception] | None]:
    # Events with their whole data (and those an error carries), the last
    # event ID, and the error's class.
    events: list[g.SSEEvent] = []
    error: type[Exception] | None = None
    try:
        for chunk in chunks:
            events += parser.feed_iter(chunk) if lazy else parser.feed(chunk)
    except SSESizeError as exc:
        events += exc.events
        error = type(exc)
    return [e._replace(data=whole(e.data)) for e in events], parser.last_event_id, error


_DECODE_BLOCKS = _growing.GrowingValues.decode_blocks


def _counting(taken: list[int]) -> Callable[..., tuple[list[str], int]]:
    """decode_blocks as it is, appending to ``taken`` how many values each
    call took (to show the path runs)."""

    def counting(
        self: _growing.GrowingValues, *args: object, **kwargs: object
    ) -> tuple[list[str], int]:
        values, start = _DECODE_BLOCKS(self, *args, **kwargs)  # type: ignore[arg-type]
        taken.append(len(values))
        return values, start

    return counting


def _chunkings(stream: bytes, cuts: list[int]) -> list[list[bytes]]:
    return [[stream], cut_at(stream, sorted(c % (len(stream) + 1) for c in cuts))]


@settings(max_examples=150, deadline=None)
@given(_streams(), st.lists(st.integers(0, 1 << 20), max_size=10), st.booleans())
def test_hostile_streams_equal_the_reference(
    drawn: tuple[bytes, str], cuts: list[int], lazy: bool
) -> None:
    stream, _ = drawn
    events, last_id, _retry = reference_parse(stream)
    for chunks in _chunkings(stream, cuts):
        assert _outcome(_parser(extensions=True), chunks, lazy) == (events, last_id, None)


@settings(max_examples=150, deadline=None)
@given(_streams(), st.lists(st.integers(0, 1 << 20), max_size=10), st.integers(3020, 3200))
def test_hostile_streams_under_caps_equal_the_plain_parser(
    drawn: tuple[bytes, str], cuts: list[int], cap: int
) -> None:
    # A line over the cap fails both the same way, the events before it kept.
    stream, _ = drawn
    for chunks in _chunkings(stream, cuts):
        plain = _outcome(_parser(extensions=False, max_line=cap), chunks)
        assert _outcome(_parser(extensions=True, max_line=cap), chunks) == plain


def _gptalk(ends: str, style: str, count: int = 40) -> bytes:
    base = 'The quick brown fox; caf\u00e9 \u2713 "q" \\ \n' * 80
    end = b"\r\n" if ends == "crlf" else b"\n"
    return b"".join(
        b"data: "
        + json.dumps({"content": base[: 32 * n]}, ensure_ascii=style == "ascii").encode()
        + end
        + end
        for n in range(70, 70 + count)
    )


@pytest.mark.parametrize("ends", ["lf", "crlf"])
@pytest.mark.parametrize("style", ["ascii", "raw"])
def test_every_split_of_a_gptalk_stream(ends: str, style: str) -> None:
    # Two events cut at every byte (and byte by byte), each way of feeding.
    stream = _gptalk(ends, style, count=3)
    expected = (reference_parse(stream)[0], "", None)
    first = stream.index(b"data: ", 1)
    for cut in range(first, len(stream) + 1):
        for lazy in (False, True):
            chunks = [stream[:first], stream[first:cut], stream[cut:]]
            assert _outcome(_parser(extensions=True), chunks, lazy) == expected
    assert _outcome(_parser(extensions=True), bytewise(stream)) == expected


@pytest.mark.parametrize("ends", ["lf", "crlf"])
def test_the_blocks_are_taken_by_decode_blocks(ends: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The path runs (or the tests above prove little about it): a read of
    # many long events after the first is taken there, as Extensions, for
    # LF streams through feed_long and CRLF streams through process_long.
    assert _growing._REUSE_FROM >= LONG_LINE  # (see decode_blocks: feed_long's lines)
    taken: list[int] = []
    monkeypatch.setattr(_growing.GrowingValues, "decode_blocks", _counting(taken))
    stream = _gptalk(ends, "raw")
    cut = len(stream) // 3
    parser = _parser(extensions=True)
    events = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
    assert [whole(e.data) for e in events] == [e.data for e in reference_parse(stream)[0]]
    assert sum(taken) >= 20
    assert sum(type(e.data) is Extension for e in events) >= 30  # type: ignore[comparison-overlap]


def test_a_lone_cr_in_the_new_bytes_stops_the_run() -> None:
    # In a CRLF read: the block with a lone CR after the proved bytes, and
    # one whose earlier bytes carry one (so they are not the previous
    # value's), go the general way: lines of their own.
    value = b'{"content": "' + b"x" * 3000 + b'"}'
    grown = value[:-2] + b"a\rb" + value[-2:]
    stream = b"".join(
        b"data: " + v + b"\r\n\r\n" for v in (value, value[:-2] + b"ab" + value[-2:], grown)
    )
    stream += b"data: " + b"\r" + grown[1:] + b"\r\n\r\n"
    expected = reference_parse(stream)
    assert _outcome(_parser(extensions=True), [stream]) == (expected[0], "", None)
    assert _outcome(_parser(extensions=True), [stream[:3100], stream[3100:]]) == (
        expected[0],
        "",
        None,
    )


@pytest.mark.parametrize("ends", ["lf", "crlf"])
def test_a_line_over_the_cap_among_the_blocks(ends: str) -> None:
    # Lines that grow past the line cap within a read of long blocks (the
    # read after one that left 2 KB of a line pending: feed_long's, for
    # LF): the first over it fails as in the plain parser, the events
    # before it kept.
    stream = _gptalk(ends, "raw", count=30)
    sep = b"\n\n" if ends == "lf" else b"\r\n\r\n"
    lines = stream.split(sep)
    second = len(lines[0]) + len(sep)
    for over in (3, 8, 20):
        cap = len(lines[over]) - 1  # lines[over] is the first over it
        for cuts in ([second + 2100], [second + 2100, second + 2100 + 9000], [second]):
            chunks = cut_at(stream, cuts)
            plain = _outcome(_parser(extensions=False, max_line=cap), chunks)
            assert plain[2] is not None
            assert issubclass(plain[2], SSESizeError)
            assert _outcome(_parser(extensions=True, max_line=cap), chunks) == plain
            assert _outcome(_parser(extensions=True, max_line=cap), chunks, lazy=True) == plain


def _short_then_long(ends: str, style: str, hostile: bytes | None) -> bytes:
    # One read as a client gets it: a reply's short lines, then its long
    # ones (LONG_LINE bytes and more), with a hostile block (if any) right
    # after the first long line, where the grower first has a value to reuse.
    stream = _gptalk(ends, style, count=50).split(b"data: ")[1:]
    first = _gptalk(ends, style, count=1)
    short = [
        b"data: " + json.dumps({"content": "ab \u00e9" * n}).encode() + first[-len(ends) // 2 :] * 2
        for n in range(1, 8)
    ]
    blocks = short + [b"data: " + b for b in stream]
    if hostile is not None:
        value = stream[0][: stream[0].rindex(b'"}')]
        end = b"\r\n" if ends == "crlf" else b"\n"
        blocks.insert(len(short) + 1, b"data: " + value + hostile + b'"}' + end + end)
    return b"".join(blocks)


@pytest.mark.parametrize("ends", ["lf", "crlf"])
@pytest.mark.parametrize("style", ["ascii", "raw"])
@pytest.mark.parametrize(
    "hostile", [None, b"x", b"\\u00", b"\\ud800", b"\\udc00", b"\x01", b"\xc3", b"\xff", b"\r"]
)
def test_short_lines_then_long_ones_in_one_read(
    ends: str, style: str, hostile: bytes | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read whose first lines are short: process_long gets its long lines
    # with no previous value in the grower, so decode_blocks takes nothing
    # at first; once the first long value is decoded, it takes the rest (the
    # retry in process_long).  Events equal the reference's, whole, at every
    # split around the first long lines, and byte by byte.
    taken: list[int] = []
    monkeypatch.setattr(_growing.GrowingValues, "decode_blocks", _counting(taken))
    stream = _short_then_long(ends, style, hostile)
    expected = (reference_parse(stream)[0], "", None)
    assert _outcome(_parser(extensions=True), [stream]) == expected
    if hostile is None:
        assert sum(taken) >= 40  # the retry took the read's blocks
    long_at = stream.index(b"data: ", len(stream) // 40)
    for cut in range(long_at - 50, long_at + 3 * LONG_LINE, 7):
        assert _outcome(_parser(extensions=True), [stream[:cut], stream[cut:]]) == expected
    assert _outcome(_parser(extensions=True), bytewise(stream)) == expected
