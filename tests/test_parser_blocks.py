"""The parser's fast paths for whole blocks (gptalk_proto/sse/_blocks.py and
the CRLF normalisation): the same events as the reference parser, however the
stream is cut, on streams of id/event/data blocks and their near misses; and
the blocks really bypass the line-by-line loop."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_proto import SSEParser
from gptalk_proto.testing._reference_sse import reference_parse
from gptalk_proto.testing.strategies import chunkings

from .sse_cases import feed_all, lines_through_loop

values = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=8)

# A block as servers write it, and the lines that make it a near miss: a NUL
# in the id (ignored by the spec), no event line, an empty event, a retry or
# a comment line, a field without its space, a leading space in a value.
near_misses = st.sampled_from(
    [
        b"",
        b"id: a\x00b\n",
        b"retry: 10\n",
        b": comment\n",
        b"data:x\n",
        b"id:  spaced\n",
        b"event: \n",
        b"\n",
        b"data: \n",
    ]
)


@st.composite
def block_streams(draw: st.DrawFn) -> bytes:
    blocks = []
    for _ in range(draw(st.integers(1, 40))):
        id_, event = draw(values), draw(values)
        lines = [b"id: " + id_.encode(), b"event: " + event.encode()]
        if draw(st.integers(0, 9)) == 0:
            lines.pop(draw(st.integers(0, 1)))
        lines += [b"data: " + draw(values).encode() for _ in range(draw(st.integers(1, 3)))]
        block = b"\n".join(lines) + b"\n"
        if draw(st.integers(0, 5)) == 0:
            cut = draw(st.integers(0, len(block)))
            block = block[:cut] + draw(near_misses) + block[cut:]
        blocks.append(block + b"\n")
    stream = b"".join(blocks)
    ends = draw(st.sampled_from([b"\n", b"\r\n", b"\r", b"mixed"]))
    if ends == b"mixed":
        return b"".join(
            line + draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
            for line in stream.split(b"\n")[:-1]
        )
    return stream.replace(b"\n", ends)


@settings(max_examples=300, deadline=None)
@given(stream=block_streams(), data=st.data())
def test_blocks_match_the_reference(stream: bytes, data: st.DataObject) -> None:
    expected = reference_parse(stream)
    assert feed_all([stream]) == expected, "whole"
    chunks = data.draw(chunkings(stream), label="chunks")
    assert feed_all(chunks) == expected, "chunked"


def _blocks(count: int, ends: bytes) -> bytes:
    block = b"id: %d\nevent: update\ndata: first %d\ndata: caf\xc3\xa9\ndata: third\n\n"
    return b"".join(block % (n, n) for n in range(count)).replace(b"\n", ends)


@pytest.mark.parametrize("ends", [b"\n", b"\r\n"])
@pytest.mark.parametrize("read", [1000, 4096, 1 << 20])
def test_blocks_skip_the_line_loop(monkeypatch: pytest.MonkeyPatch, ends: bytes, read: int) -> None:
    """Whole blocks are matched, not interpreted line by line: the loop sees
    only the lines of the block each read cuts in two (at most a block's six
    lines and the few either side of the cut), not every line."""
    seen = lines_through_loop(monkeypatch)
    stream = _blocks(500, ends)
    parser = SSEParser()
    events = []
    for start in range(0, len(stream), read):
        events += parser.feed(stream[start : start + read])
    assert events == reference_parse(stream)[0]
    assert len(events) == 500
    reads = -(-len(stream) // read)
    # Before the fast path: six lines per event, 3,000; now at most 8 a read
    # (240 at 1,000-byte reads, 8 at one read).
    assert len(seen) <= 8 * reads, (len(seen), reads)
