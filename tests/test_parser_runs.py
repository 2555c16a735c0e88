"""The parser's run of simple blocks (gptalk_proto/sse/_blocks.py simple_run
and its split): the same events as the reference parser, and the checks that
only save work (the look at the first block before the decode, the split a
window at a time) doing their part, counted, not timed."""

from __future__ import annotations

import pytest

from gptalk_proto.sse import _blocks
from gptalk_proto.testing._reference_sse import reference_parse

from .sse_cases import check_stream, feed_all, lines_through_loop

SEPARATORS = {False: "\n\ndata: ", True: "\r\n\r\ndata: "}


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize(
    "sizes",
    [
        [0],
        [5] * 10,
        [3] * 20_000,  # many windows
        [20_000, 3, 3, 40_000, 0, 7],  # values longer than a window
        [_blocks._SPLIT_WINDOW - 10, 1, _blocks._SPLIT_WINDOW, 2, 0],
        [1] * 5 + [60_000],  # no separator after the first window
    ],
)
def test_split_a_window_at_a_time_is_the_split(crlf: bool, sizes: list[int]) -> None:
    sep = SEPARATORS[crlf]
    values = ["x" * size if n % 2 else "\u00e9\u2713" * (size // 2) for n, size in enumerate(sizes)]
    text = sep.join(values)
    assert _blocks._split(text, crlf) == text.split(sep) == values


@pytest.mark.parametrize("ends", [b"\n", b"\r\n"])
def test_other_blocks_are_turned_away_before_the_decode(
    monkeypatch: pytest.MonkeyPatch, ends: bytes
) -> None:
    """A region that starts with a data line but is not simple blocks (here,
    two data lines per event) is turned away by its first block: the whole
    region (long enough to be split a window at a time) is not decoded and
    split for nothing."""
    calls = 0
    split = _blocks._split

    def counting(text: str, crlf: bool) -> list[str]:
        nonlocal calls
        calls += 1
        return split(text, crlf)

    monkeypatch.setattr(_blocks, "_split", counting)
    stream = (b"data: a\ndata: b\n\n" * 5000).replace(b"\n", ends)
    assert feed_all([stream]) == reference_parse(stream)
    assert calls == 0
    # The same count of simple blocks is split (the spy sees the region).
    simple = (b"data: a\n\n" * 5000).replace(b"\n", ends)
    assert feed_all([simple]) == reference_parse(simple)
    assert calls == 1


@pytest.mark.parametrize("ends", [b"\n", b"\r\n"])
def test_a_region_opened_by_a_blank_line_is_a_run(
    monkeypatch: pytest.MonkeyPatch, ends: bytes
) -> None:
    """Reads that start with the blank line of the previous read's last data
    line: that blank line dispatches, and the blocks after it are still one
    run (no line goes through the line-by-line loop)."""
    seen = lines_through_loop(monkeypatch)
    read = b"".join(b"data: %d\n\n" % n for n in range(20))
    # Each read: the blank line that ends the previous read's last event,
    # whole blocks, then a data line whose blank line comes next read.
    chunks = [(b"\n" + read + b"data: last\n").replace(b"\n", ends) for _ in range(30)]
    chunks[0] = chunks[0][len(ends) :]
    stream = b"".join(chunks)
    assert feed_all(chunks) == reference_parse(stream)
    assert len(reference_parse(stream)[0]) == 29 * 21 + 20
    assert seen == []


# Regions (whole lines, LF ends, without the last line end) that reach each
# branch of simple_run: opened by a blank line or not, one or two blank lines
# only, a data line waiting for its blank line, values with a stray line end
# or CR, other fields, "data:" without its space, short and empty values.
REGIONS = [
    b"",
    b"\n",
    b"\n\n",
    b"data: a\n",
    b"\ndata: a\n",
    b"\ndata: a\n\ndata: b",
    b"data: a\n\ndata: b\n",
    b"data: a\n\ndata: b",
    b"data: \n\ndata: \n",
    b"data:",
    b"data",
    b"\ndata",
    b"data:a\n",
    b"data: a\ndata: b\n",
    b"data: a\n\ndata: b\ndata: c\n",
    b"data: a\n\n\ndata: b\n",
    b"data: a\n\nid: 1\n",
    b"data: a\r\n",
    b"data: a\rb\n\ndata: c\n",
    b"data: caf\xc3\xa9 \xe2\x9c\x93\n\ndata: \xff\n",
]


@pytest.mark.parametrize("region", REGIONS)
def test_lf_and_crlf_regions_read_alike(region: bytes) -> None:
    """simple_run reads LF regions in its own steps (fewer than the CRLF
    reader's); a region gives the same answer with either line end (a lone CR
    aside: with CRLF ends it is a line end of its own, turned away)."""
    for prefix in (b"", b"xx\n"):  # the region at the buffer's start, or not
        lf = prefix + region + b"\n"
        crlf = prefix + region.replace(b"\n", b"\r\n") + b"\r\n"
        line = lf.find(b"\n", len(prefix), len(lf) - 1)
        got = _blocks.simple_run(lf, len(prefix), len(lf) - 1, False, line)
        cline = crlf.find(b"\n", len(prefix), len(crlf) - 2)
        expected = _blocks.simple_run(crlf, len(prefix), len(crlf) - 2, True, cline)
        if b"\r" in region:
            assert expected is None
        else:
            assert got == expected
        # Without the first line end known (-1 or before the region).
        assert _blocks.simple_run(lf, len(prefix), len(lf) - 1, False, -1) == got


@pytest.mark.parametrize("ends", [b"\n", b"\r\n"])
def test_streams_of_the_regions_parse_as_the_reference(ends: bytes) -> None:
    """Every region above inside a stream, fed whole, byte by byte and at
    random splits: the events of the reference parser."""
    stream = b"\n\n".join(REGIONS).replace(b"\n", ends) + ends * 2
    stream += b"".join(b"data: %d %s\n\n" % (n, b"x" * n) for n in range(300)).replace(b"\n", ends)
    events, last_id, retry = reference_parse(stream)
    check_stream(stream, events, last_event_id=last_id, retry=retry)
