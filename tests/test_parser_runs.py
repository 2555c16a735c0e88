"""The parser's run of simple blocks (gptalk_proto/sse/_blocks.py simple_run
and its split): the same events as the reference parser, and the checks that
only save work (the look at the first block before the decode, the split a
window at a time) doing their part, counted, not timed."""

from __future__ import annotations

import pytest

from gptalk_proto.sse import _blocks
from gptalk_proto.testing._reference_sse import reference_parse

from .sse_cases import feed_all, lines_through_loop

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
