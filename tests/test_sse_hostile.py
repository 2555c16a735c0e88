"""Hostile streams at the edges of the parser's shortcuts, against the
reference parser.

The shortcuts (see sse/_blocks.py and sse/_parser.py): a run of simple blocks
proven by one split and a search of its values, a split a window
(_SPLIT_WINDOW characters) at a time for long texts, a region's first line
choosing the long-line path (LONG_LINE bytes), a short unfinished line joined
with the next chunk.  Each case puts something the spec reads differently
(a lone CR or LF, a separator, NUL, invalid UTF-8, a BOM, a CR ending a chunk)
right at one of those edges, and the stream is fed whole, byte by byte (when
short), at random cuts and cut at every offset around the edge.
"""

from __future__ import annotations

import pytest

from gptalk_proto import SSEParser
from gptalk_proto.sse._blocks import _SPLIT_WINDOW
from gptalk_proto.sse._lines import LONG_LINE
from gptalk_proto.testing._reference_sse import reference_parse

from .sse_cases import bytewise, cut_at, feed_all, outcome, random_chunks

W = _SPLIT_WINDOW


def _short_blocks(total: int, eol: bytes = b"\n") -> bytes:
    """Simple blocks of short values, ``total`` bytes or a little more."""
    out = bytearray()
    n = 0
    while len(out) < total:
        out += b"data: v%d" % n + eol + eol
        n += 1
    return bytes(out)


def _check(stream: bytes, around: list[int]) -> None:
    """Every chunking of ``stream`` reads as the reference parser reads it."""
    want = reference_parse(stream)
    ways = [[stream]] + [random_chunks(stream, seed) for seed in range(3)]
    if len(stream) <= 4096:
        ways.append(bytewise(stream))
    for at in around:
        for cut in range(max(0, at - 3), min(len(stream), at + 4)):
            ways.append(cut_at(stream, [cut]))
    for chunks in ways:
        assert feed_all(chunks) == want, [len(c) for c in chunks][:20]


def _with(stream: bytes, at: int, what: bytes) -> bytes:
    return stream[:at] + what + stream[at:]


# A run of simple blocks long enough for the windowed split; the text the
# split sees starts after the first "data: " (6 bytes).
LONG_RUN = _short_blocks(2 * W + 500)


@pytest.mark.parametrize("shift", [-9, -8, -7, -6, -2, -1, 0, 1, 2, 6, 8])
@pytest.mark.parametrize("what", [b"\n", b"\r", b"\r\n", b"\n\n", b"\n\ndata: ", b"\x00", b"\xc3"])
def test_something_odd_at_a_window_edge(shift: int, what: bytes) -> None:
    at = 6 + W + shift
    _check(_with(LONG_RUN, at, what), [at])


@pytest.mark.parametrize("size", [W - 9, W - 8, W - 7, W - 6, W - 1, W, W + 1, W + 7])
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_values_about_a_window_long(size: int, eol: bytes) -> None:
    # A value that fills the window to a character of it, then short blocks:
    # the first separator after the window is right at its edge or past it.
    stream = b"data: " + b"a" * size + eol + eol + _short_blocks(W + 100, eol)
    _check(stream, [6 + size, 6 + W])


@pytest.mark.parametrize("size", [W - 1, W, W + 1])
def test_values_a_window_long_with_a_lone_line_end_in_the_next(size: int) -> None:
    stream = b"data: " + b"a" * size + b"\n\ndata: x\ry\n\n" + _short_blocks(W)
    _check(stream, [6 + size])


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_invalid_utf8_straddling_a_window_edge(eol: bytes) -> None:
    run = _short_blocks(2 * W, eol)
    line = run.rfind(eol + eol + b"data: ", 0, 6 + W) + 2 * len(eol) + 6
    for stream in (_with(run, line, b"\xe2\x82"), _with(run, line, b"\xf0\x9f\x98")):
        _check(stream, [line, line + 1, line + 2])


@pytest.mark.parametrize(
    "size", [LONG_LINE - 8, LONG_LINE - 7, LONG_LINE - 6, LONG_LINE - 1, LONG_LINE, LONG_LINE + 1]
)
@pytest.mark.parametrize("tail", [b"", b"data: x\ny\n\n", b"data: x\r\n\r\n", b"id: 1\n\n"])
def test_first_lines_about_the_long_line_size(size: int, tail: bytes) -> None:
    # The first line decides the long-line path: just below, at, just above.
    stream = b"data: " + b"b" * (size - 6) + b"\n\n" + _short_blocks(600) + tail
    _check(stream, [size, size + 1])


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_chunks_ending_in_cr_at_every_cut(eol: bytes) -> None:
    stream = b"data: a\r\ndata: b" + eol + eol + b"data: c\rdata: d\r\n\r\n" + _short_blocks(300)
    _check(stream, [i for i, byte in enumerate(stream[:60]) if byte == 0x0D])


@pytest.mark.parametrize(
    "stream",
    [
        b"\xef\xbb\xbfdata: a\n\n",
        b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n",  # only the first BOM is dropped
        b"\xef\xbbdata: a\n\n",  # a BOM's start, not a BOM
        b"\xefdata: a\n\n",
        b"\xef\xbb\xbf\r\ndata: a\r\n\r\n",
        b"\xef\xbb\xbf\rdata: a\r\r",
    ],
)
def test_bom_split_anywhere(stream: bytes) -> None:
    _check(stream, [1, 2, 3])


@pytest.mark.parametrize(
    "stream",
    [
        # LF and CRLF mixed in one chunk, the last line end either kind.
        b"data: a\n\ndata: b\r\n\r\ndata: c\n\n",
        b"data: a\r\n\r\ndata: b\n\ndata: c\r\n\r\n",
        b"data: a\r\n\ndata: b\n\r\n",
        b"data: a\n\r\ndata: b\r\n\r\n",
        # NUL in values, ids and field names.
        b"data: a\x00b\n\nid: 1\x002\ndata: c\n\n\x00data: d\n\n",
        b"id: 7\ndata: a\x00\r\n\r\n",
        # Invalid UTF-8 before a line end, a lone surrogate, an overlong form.
        b"data: a\xc3\n\ndata: \xed\xa0\x80\n\ndata: \xc0\xaf\r\n\r\n",
        # A blank line opening the region, with an event pending from before.
        b"data: a\n" + _short_blocks(200),
        b"data: a\r\n" + _short_blocks(200, b"\r\n"),
        b"event: e\n" + _short_blocks(200),
        b"retry: 5\n" + _short_blocks(200),
    ],
)
def test_mixed_line_ends_nul_and_invalid_utf8(stream: bytes) -> None:
    _check(stream, list(range(0, min(len(stream), 60), 7)))


@pytest.mark.parametrize("cap", [LONG_LINE - 1, LONG_LINE, 4096])
@pytest.mark.parametrize("over", [-1, 0, 1])
def test_a_line_about_the_line_cap(cap: int, over: int) -> None:
    # The same outcome (events, then the size error or none) however the
    # stream is cut; under the cap, what the reference parser reads.
    line = b"data: " + b"c" * (cap + over - 6)
    stream = _short_blocks(300) + line + b"\n\n" + _short_blocks(300)
    start = stream.index(line)
    ways = [[stream], bytewise(stream), *(random_chunks(stream, seed) for seed in range(3))]
    ways += [cut_at(stream, [cut]) for cut in (start, start + 1, start + cap, start + cap + 1)]
    found = [outcome(chunks, SSEParser(max_line_size=cap)) for chunks in ways]
    assert all(got == found[0] for got in found)
    if over <= 0:
        assert found[0] == (*reference_parse(stream), None)
    else:
        assert found[0][3] is not None
