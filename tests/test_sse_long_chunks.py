"""Streams of long lines, the way sse/_long.py's feed_long takes them, against
the reference parser.

feed_long takes a chunk whole when at least LONG_LINE bytes of a line are
pending and the chunk holds no CR: a chunk without a line end, or one whose
first line is a long data line with its blank line right after it, then each
next long data block; the first line that is anything else goes feed's
general way.  Each case puts something else right after, before or inside
those blocks (short blocks, other fields, a data line without its blank line,
CRs, invalid UTF-8, a line about a cap), and the stream is fed whole, byte by
byte, at random cuts and at fixed read sizes, with and without
``growing_tail``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_proto import RemoteProtocolError, SSELineTooLong, SSEParser
from gptalk_proto.sse import _long
from gptalk_proto.sse._event import SSEEvent
from gptalk_proto.sse._lines import LONG_LINE, VIEW_FROM
from gptalk_proto.testing._reference_sse import reference_parse

from .sse_cases import bytewise, cut_at, feed_all, iter_all, outcome, random_chunks

TEXT = "caf\u00e9 \u2713 the quick brown fox ".encode()


def _long_value(size: int, salt: int = 0) -> bytes:
    return (b"%d " % salt + TEXT * (size // len(TEXT) + 1))[:size]


def _cumulative(count: int, first: int, step: int, eol: bytes = b"\n") -> bytes:
    """GPTalk's shape: each value the previous one with text before '"}'."""
    body = _long_value(first + step * count)
    return b"".join(
        b'data: {"content": "' + body[: first + step * n] + b'"}' + eol + eol for n in range(count)
    )


#: Offsets about a line's start where a stream is cut: in the line before
#: (more or less than LONG_LINE bytes of it pending when the chunk that
#: completes it comes, with the line whole after it), at it, and in it.
CUTS = (-LONG_LINE - 100, -LONG_LINE + 100, -3, -2, -1, 0, 1, LONG_LINE + 100)


def _ways(stream: bytes) -> list[list[bytes]]:
    ways = [[stream], *(random_chunks(stream, seed) for seed in range(4))]
    ways += [[stream[i : i + size] for i in range(0, len(stream), size)] for size in READS]
    starts: list[int] = []
    at = stream.find(b"\ndata: ")
    while at >= 0 and len(starts) < 12:
        starts.append(at + 1)
        at = stream.find(b"\ndata: ", at + 1)
    cuts = sorted({at + shift for at in starts for shift in CUTS} & set(range(1, len(stream))))
    ways += [cut_at(stream, [cut]) for cut in cuts]
    if len(stream) <= 40_000:
        ways.append(bytewise(stream))
    return ways


# Read sizes about the lines' own size (so chunks end anywhere in a line,
# and hold one line end, several or none) and about the shortcut's edges.
READS = (1000, LONG_LINE - 1, LONG_LINE + 1, VIEW_FROM + 1, 4096, 16384, 65536)


def _check(stream: bytes) -> None:
    want = reference_parse(stream)
    for tail in (0, 2):
        for chunks in _ways(stream):
            got = feed_all(chunks, SSEParser(growing_tail=tail))
            assert got == want, (tail, [len(c) for c in chunks][:20])
            got = iter_all(chunks, SSEParser(growing_tail=tail))
            assert got == want, ("feed_iter", tail, [len(c) for c in chunks][:20])


def test_feed_long_takes_the_chunks_of_a_cumulative_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The shortcut runs here (so the cases below test it, not feed's way),
    # and gives what the reference gives.
    taken = []
    original = _long.feed_long

    def spy(self: SSEParser, data: bytes) -> list[object] | None:
        done = original(self, data)
        taken.append(done is not None)
        return done  # type: ignore[return-value]

    monkeypatch.setattr("gptalk_proto.sse._parser.feed_long", spy)
    stream = _cumulative(60, 3000, 40)
    chunks = [stream[i : i + 16384] for i in range(0, len(stream), 16384)]
    assert feed_all(chunks, SSEParser(growing_tail=2)) == reference_parse(stream)
    assert sum(taken) > len(chunks) // 2


def test_feed_iter_takes_the_chunks_of_a_cumulative_stream_without_feed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # feed_iter hands such chunks to feed_long itself: feed runs for the
    # others only, and the events are the reference's.
    fed = []
    original = SSEParser.feed

    def spy(self: SSEParser, data: bytes) -> list[SSEEvent]:
        fed.append(len(data))
        return original(self, data)

    monkeypatch.setattr(SSEParser, "feed", spy)
    stream = _cumulative(60, 3000, 40)
    for read in (1000, 4096, 16384):
        fed.clear()
        chunks = [stream[i : i + read] for i in range(0, len(stream), read)]
        assert iter_all(chunks, SSEParser(growing_tail=2)) == reference_parse(stream)
        assert 0 < len(fed) < len(chunks) // 2


def test_feed_iter_on_a_long_pending_line_empty_chunks_and_errors() -> None:
    # An empty chunk changes nothing; after an error on a long line,
    # feed_iter refuses as feed does.
    line = b"data: " + _long_value(3 * LONG_LINE)
    parser = SSEParser(growing_tail=2, max_line_size=len(line) + 10)
    assert list(parser.feed_iter(line[:5000])) == []
    assert list(parser.feed_iter(b"")) == []
    (event,) = parser.feed_iter(line[5000:] + b"\n\n" + line[: LONG_LINE + 1])
    assert event.data == reference_parse(line + b"\n\n")[0][0].data
    with pytest.raises(SSELineTooLong):
        parser.feed_iter(line)
    with pytest.raises(RemoteProtocolError, match="unusable"):
        parser.feed_iter(b"data: x\n\n")


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("step", [1, 37])
def test_cumulative_streams(eol: bytes, step: int) -> None:
    _check(_cumulative(12, LONG_LINE - 40, step, eol))


# What comes after a long data block, or instead of its blank line.
AFTER = [
    b"data: short\n\n",
    b"data: short\n\ndata: another\n\n",
    b": a comment\n\n",
    b"id: 7\n\n",
    b"id: 7\n",
    b"event: update\n",
    b"retry: 15\n",
    b"data\n\n",
    b"\n\n\n",
    b"\n",
    b"\r\n",
    b"\r",
    b"data: a\rdata: b\n\n",
    b"data: \xff\xfe broken \xc3\n\n",
]


@pytest.mark.parametrize("after", AFTER)
@pytest.mark.parametrize("where", ["between", "instead_of_blank"])
def test_something_else_among_long_blocks(after: bytes, where: str) -> None:
    # Two whole long blocks, then something else (after a blank line, or
    # instead of it), then more long blocks.
    blocks = [b"data: " + _long_value(LONG_LINE + 300 * n, n) for n in range(6)]
    joiner = b"\n\n" + after if where == "between" else b"\n" + after
    _check(b"\n\n".join(blocks[:3]) + joiner + b"\n\n".join(blocks[3:]) + b"\n\n")


@pytest.mark.parametrize("size", [LONG_LINE - 7, LONG_LINE - 6, LONG_LINE - 1, LONG_LINE])
def test_lines_about_the_long_line_size_after_a_long_one(size: int) -> None:
    # The line after the completed one decides whether the loop goes on.
    first = b"data: " + _long_value(5000)
    second = b"data: " + _long_value(size - 6, 1)
    _check(first + b"\n\n" + second + b"\n\n" + first + b"\n\n")


@pytest.mark.parametrize("pending", [500, LONG_LINE - 1, LONG_LINE, LONG_LINE + 1, VIEW_FROM + 1])
@pytest.mark.parametrize("rest", [0, 1, 6, 40, VIEW_FROM, VIEW_FROM + 1])
def test_a_chunk_completing_a_line_cut_anywhere(pending: int, rest: int) -> None:
    # A long line, pending by `pending` bytes, completed by a chunk that
    # leaves `rest` bytes of the next line pending.
    lines = [b"data: " + _long_value(4000 + 10 * n, n) + b"\n\n" for n in range(4)]
    stream = b"".join(lines)
    cut = len(lines[0]) + pending
    end = len(lines[0]) + len(lines[1]) + len(lines[2]) + rest
    want = reference_parse(stream)
    for tail in (0, 2):
        chunks = cut_at(stream, [len(lines[0]), cut, end])
        assert feed_all(chunks, SSEParser(growing_tail=tail)) == want


@pytest.mark.parametrize("cap", ["line", "event"])
@pytest.mark.parametrize("over", [-1, 0, 1])
@pytest.mark.parametrize("which", [0, 1, 2])
def test_a_long_line_about_a_cap(cap: str, over: int, which: int) -> None:
    # The same outcome however the stream is cut (the events before the
    # error, then the error); under the cap, what the reference reads.
    # The longest line is the one about the cap.
    values = [_long_value(3000 + 100 * n + 1000 * (n == which), n) for n in range(3)]
    # The line cap counts bytes (the line's, "data: " included), the event
    # cap characters (the value's).
    chars = len(values[which].decode("utf-8", "replace"))
    limit = len(values[which]) + 6 + over if cap == "line" else chars + over
    stream = b"".join(b"data: " + value + b"\n\n" for value in values) * 2
    kwargs = {"max_line_size" if cap == "line" else "max_event_size": limit}
    found = [outcome(chunks, SSEParser(**kwargs)) for chunks in _ways(stream)]  # type: ignore[arg-type]
    assert all(got == found[0] for got in found)
    if over >= 0:
        assert found[0] == (*reference_parse(stream), None)
    else:
        assert found[0][3] is not None


@st.composite
def long_streams(draw: st.DrawFn) -> bytes:
    """Long data blocks, most growing as cumulative replies do, mixed with
    short blocks, other fields and lines without their blank line."""
    pieces = []
    value = _long_value(draw(st.integers(LONG_LINE - 20, LONG_LINE + 600)))
    for _ in range(draw(st.integers(2, 8))):
        kind = draw(st.sampled_from(["grow", "grow", "grow", "other", "short", "field"]))
        if kind == "grow":
            insert = draw(st.binary(max_size=12)).replace(b"\n", b"").replace(b"\r", b"")
            value = value[:-2] + insert + value[-2:]
            pieces.append(b"data: " + value + b"\n\n")
        elif kind == "other":
            pieces.append(b"data: " + _long_value(draw(st.integers(400, 3000))) + b"\n")
            pieces.append(draw(st.sampled_from([b"\n", b"data: more\n\n", b"\r\n"])))
        elif kind == "short":
            pieces.append(b"data: s\n\n")
        else:
            fields = [b"id: 1\n", b"event: e\n", b": c\n", b"retry: 9\n"]
            pieces.append(draw(st.sampled_from(fields)))
    return b"".join(pieces)


@settings(max_examples=200, deadline=None)
@given(long_streams(), st.data(), st.sampled_from([0, 2]))
def test_long_streams_match_the_reference(stream: bytes, data: st.DataObject, tail: int) -> None:
    size = data.draw(st.integers(LONG_LINE // 2, 3 * LONG_LINE))
    chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    for way in (chunks, cut_at(stream, cuts)):
        assert feed_all(way, SSEParser(growing_tail=tail)) == reference_parse(stream)
        assert iter_all(way, SSEParser(growing_tail=tail)) == reference_parse(stream)
