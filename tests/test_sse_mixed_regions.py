"""Regions of short lines and then long ones, against the reference parser.

A client's read of a cumulative reply holds the last short lines of the
reply and then long ones; the parser cuts such a region before its long
lines (sse/_lines.long_lines_from) and reads each part its own way.  These
streams put every kind of line about that cut (other fields, a data line
without its blank line, lone CRs, invalid UTF-8, lines that shrink again)
and are fed whole, byte by byte, at random cuts and at fixed read sizes,
through feed and feed_iter, with and without ``growing_tail``.  Long CRLF
blocks (read as they came, in sse/_long.process_long's loop) get one odd
line end among them.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_proto import SSEParser
from gptalk_proto.sse import _long
from gptalk_proto.sse._lines import LONG_LINE, MIXED_FROM, long_lines_from
from gptalk_proto.testing._reference_sse import reference_parse

from .sse_cases import bytewise, cut_at, feed_all, iter_all

TEXT = "caf\u00e9 \u2713 the quick brown fox ".encode()


def _value(size: int) -> bytes:
    return (TEXT * (size // len(TEXT) + 1))[:size]


def _growing(sizes: list[int], eol: bytes = b"\n") -> bytes:
    """GPTalk's shape: each value the previous one with text before '"}'."""
    body = _value(max(sizes))
    return b"".join(b'data: {"content": "' + body[:size] + b'"}' + eol + eol for size in sizes)


def _random_cuts(stream: bytes, seed: int) -> list[bytes]:
    """Cut at a few dozen seeded random points (anywhere: in a line, at a
    line end, between the CR and LF of one)."""
    rng = random.Random(seed)
    return cut_at(stream, sorted(rng.randint(0, len(stream)) for _ in range(rng.randint(1, 40))))


def _check(stream: bytes, *, bytes_too: bool = False) -> None:
    want = reference_parse(stream)
    ways = [[stream], *(_random_cuts(stream, seed) for seed in range(3))]
    ways += [[stream[i : i + size] for i in range(0, len(stream), size)] for size in (4096, 65536)]
    if bytes_too:
        ways.append(bytewise(stream))
    for tail in (0, 2):
        for chunks in ways:
            assert feed_all(chunks, SSEParser(growing_tail=tail)) == want, (tail, len(chunks))
            assert iter_all(chunks, SSEParser(growing_tail=tail)) == want, (tail, len(chunks))


# -- where the long lines start -----------------------------------------------------


def _lines(lengths: list[int]) -> bytes:
    return b"\n".join(b"x" * n for n in lengths)


@pytest.mark.parametrize("first_long", [1, 2, 7, 30, 50])
def test_long_lines_from_finds_the_first_long_line_of_growing_lines(first_long: int) -> None:
    lengths = [100 + n for n in range(first_long)] + [LONG_LINE + 10 * n for n in range(60)]
    lengths = lengths[:60]
    buf = b"pad" + _lines(lengths) + b"\n"
    at = long_lines_from(buf, 3, len(buf) - 1)
    assert at == 3 + sum(n + 1 for n in lengths[:first_long])


def test_long_lines_from_when_the_end_is_not_in_long_lines() -> None:
    # Fewer than MIXED_FROM bytes of long lines at the end: no cut.
    buf = _lines([100, LONG_LINE + 5, LONG_LINE + 6, 100]) + b"\n"
    assert long_lines_from(buf, 0, len(buf) - 1) == len(buf) - 1
    short = _lines([10] * 10_000)
    assert long_lines_from(short, 0, len(short)) == len(short)
    assert long_lines_from(b"ab", 0, 2) == 2
    # Long lines, then short ones again (a reply's last event, "[DONE]"): a
    # cut when the line MIXED_FROM bytes before the end is long.
    lengths = [100] * 5 + [LONG_LINE + 100] * 20 + [12]
    buf = _lines(lengths) + b"\n"
    assert long_lines_from(buf, 0, len(buf) - 1) == 5 * 101


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 3 * LONG_LINE), min_size=2, max_size=40))
def test_long_lines_from_gives_a_long_line_start(lengths: list[int]) -> None:
    # Whatever the lines' lengths: the end, or a line start after the first
    # line whose line is long.
    lengths[0] = min(lengths[0], LONG_LINE - 1)
    buf = _lines(lengths) + b"\n"
    end = len(buf) - 1
    at = long_lines_from(buf, 0, end)
    if at < end:
        assert at > 0
        assert buf[at - 1] == 0x0A
        stop = buf.find(b"\n", at)
        assert stop - at >= LONG_LINE
        assert at <= end - MIXED_FROM


# -- the parser on such regions -------------------------------------------------------


def test_a_whole_read_of_short_then_long_lines_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    # The cut is made (so the cases below test it), its long part goes the
    # long lines' way, and the events are the reference's.
    regions = []
    original = _long.process_long

    def spy(
        self: SSEParser,
        buf: bytes,
        start: int,
        end: int,
        crlf: bool = False,
        *,
        lazy: bool = False,
    ) -> object:
        regions.append(end - start)
        return original(self, buf, start, end, crlf, lazy=lazy)

    monkeypatch.setattr("gptalk_proto.sse._parser.process_long", spy)
    for eol in (b"\n", b"\r\n"):
        regions.clear()
        stream = _growing(list(range(200, 8000, 200)), eol)
        assert feed_all([stream], SSEParser(growing_tail=2)) == reference_parse(stream)
        assert regions
        assert MIXED_FROM <= regions[0] < len(stream) - 8 * 1024


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("step", [97, 400])
def test_growing_replies(eol: bytes, step: int) -> None:
    _check(_growing(list(range(100, 4 * LONG_LINE, step)), eol))


def test_growing_replies_byte_by_byte() -> None:
    for eol in (b"\n", b"\r\n"):
        _check(_growing([*range(1500, 3000, 150), 9000], eol), bytes_too=True)


# What comes at the cut (after the last short block, or instead of its blank line).
AT_THE_CUT = [
    b"",
    b": a comment\n\n",
    b"id: 7\n",
    b"event: update\n",
    b"retry: 15\n",
    b"data: more\n",
    b"data\n",
    b"\n\n",
    b"\r",
    b"data: a\rdata: b\n\n",
    b"data: \xff\xfe broken \xc3\n\n",
]


@pytest.mark.parametrize("at_cut", AT_THE_CUT)
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
@pytest.mark.parametrize("blank", [True, False])
def test_something_else_at_the_cut(at_cut: bytes, eol: bytes, blank: bool) -> None:
    short = _growing(list(range(200, 1900, 100)), eol)
    if not blank:
        short = short[: -len(eol)]  # the last short block waits for its blank line
    long = _growing(list(range(LONG_LINE, LONG_LINE + 2400, 300)), eol)
    _check(short + at_cut.replace(b"\n", eol) + long)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_lines_that_shrink_and_grow_again(eol: bytes) -> None:
    sizes = [300, 2500, 400, 5000, 100, 3000, 3000, 50, 9000, 9500, 10000, 200]
    _check(_growing(sizes * 3, eol))


@st.composite
def mixed_streams(draw: st.DrawFn) -> bytes:
    """Short blocks, then long ones (growing or not), with other lines
    among them, in one line-end style or with lone CRs."""
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    sizes = sorted(draw(st.lists(st.integers(0, LONG_LINE - 40), min_size=1, max_size=12)))
    sizes += sorted(draw(st.lists(st.integers(LONG_LINE, 3 * LONG_LINE), min_size=1, max_size=12)))
    pieces = []
    for size in sizes:
        pieces.append(_growing([size], eol))
        if draw(st.integers(0, 5)) == 0:
            other = [b"id: 1\n", b"event: e\n", b": c\n", b"retry: 9\n", b"\r", b"data: x\n"]
            pieces.append(draw(st.sampled_from(other)).replace(b"\n", eol))
    return b"".join(pieces)


@settings(max_examples=150, deadline=None)
@given(mixed_streams(), st.data(), st.sampled_from([0, 2]))
def test_mixed_streams_match_the_reference(stream: bytes, data: st.DataObject, tail: int) -> None:
    want = reference_parse(stream)
    size = data.draw(st.integers(LONG_LINE, 8 * MIXED_FROM))
    ways = [[stream], [stream[i : i + size] for i in range(0, len(stream), size)]]
    ways.append(_random_cuts(stream, data.draw(st.integers(0, 1000))))
    for chunks in ways:
        assert feed_all(chunks, SSEParser(growing_tail=tail)) == want
        assert iter_all(chunks, SSEParser(growing_tail=tail)) == want


# Long CRLF blocks, read as they came (not normalised), with one odd line end
# among them: process_long's loop takes the blocks until it, then the general
# rules.  Each replaces the block's "\r\n\r\n".
ODD = [
    b"\n\r\n",  # the data line ends in LF alone
    b"\r\n\n",  # the blank line is LF alone
    b"\r\n\r",  # the blank line is CR alone
    b"\r\r\n",  # the data line ends in CR alone, then a blank line
    b"\r\n",  # no blank line: two data lines in one event
    b"\r\n\r\n\r\n",  # two blank lines
    b"\rx\r\n\r\n",  # a lone CR inside the line
]


@pytest.mark.parametrize("odd", ODD)
@pytest.mark.parametrize("which", [0, 3, 6])
def test_long_crlf_blocks_with_an_odd_line_end(odd: bytes, which: int) -> None:
    blocks = [_growing([LONG_LINE + 400 * n], b"\r\n") for n in range(7)]
    blocks[which] = blocks[which][:-4] + odd
    _check(b"".join(blocks))
