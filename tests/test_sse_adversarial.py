"""Adversarial cases for SSEParser: what a hostile peer can make it hold, and
the corners of the unnormalised-CRLF and decode-reuse paths (examples that
must equal the reference parser however the stream is cut)."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from gptalk_proto import SSEEventTooLarge, SSEParser
from gptalk_proto.testing._reference_sse import reference_parse

from .sse_cases import bytewise, feed_all, outcome, random_chunks


def _held_after(parser: SSEParser, chunks: list[bytes]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for chunk in chunks:
            parser.feed(chunk)
        del chunk
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_many_short_data_lines_are_held_near_the_event_cap() -> None:
    # Found: the pending event's data buffer is a list of lines, and the event
    # cap counts characters: "data: ab" lines (3 characters with their LF)
    # held about 60 bytes each (a str and a pointer), 20 bytes per capped
    # character: ~660 MB for the default 32 MiB cap.
    cap = 256 * 1024
    lines = cap // 3 - 10
    chunk = b"data: ab\n" * (lines // 64)
    parser = SSEParser(max_event_size=cap)
    held = _held_after(parser, [chunk] * 64)
    assert held < 3 * cap, held
    # Still exact: the event is the lines joined by LF.
    (event,) = parser.feed(b"\n")
    assert event.data == "\n".join(["ab"] * (lines // 64 * 64))


def _short_lines_stream(count: int) -> bytes:
    body = b"".join(b"data: %d\r\n" % i if i % 3 else b"data:\n" for i in range(count))
    return body + b"\r\nid: 7\r\ndata: end\r\n\r\n" + body[:600] + b"\n\n"


@pytest.mark.parametrize("count", [250, 257, 600, 3000])
def test_joined_data_lines_equal_the_reference(count: int) -> None:
    stream = _short_lines_stream(count)
    expected = reference_parse(stream)
    ways = [[stream], bytewise(stream), *(random_chunks(stream, seed) for seed in range(4))]
    for chunks in ways:
        for tail in (0, 2):
            assert feed_all(chunks, SSEParser(growing_tail=tail)) == expected


@pytest.mark.parametrize("cap", [700, 1000, 2900, 4000])
def test_joined_data_lines_hit_the_event_cap_as_when_cut_anywhere(cap: int) -> None:
    # The join keeps the buffer's size in characters: the cap fires at the
    # same line, with the same events before it, however the stream is cut.
    stream = _short_lines_stream(1500)
    whole = outcome([stream], SSEParser(max_event_size=cap))
    assert whole[3] is SSEEventTooLarge
    for chunks in (bytewise(stream), *(random_chunks(stream, seed) for seed in range(4))):
        assert outcome(chunks, SSEParser(max_event_size=cap)) == whole
