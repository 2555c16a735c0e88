"""The parser's unnormalised CRLF paths and its line-length paths, against the reference.

A chunk whose last line end is a CRLF is parsed as it came (see
``SSEParser.feed``): runs of simple blocks, long lines and id/event/data runs
each prove their own line ends, and anything else is normalised region by
region.  Which path a region takes depends on the length of its lines (under
128 bytes the blocks are counted, from there split and checked, from about a
kilobyte each line is its own step).  These streams mix all of that: blocks of
every length, LF, CRLF and lone CR line ends (also inside values and at chunk
edges), id/event blocks, comments and retry lines; the events, last event ID
and retry must equal the reference parser's however the stream is cut.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_proto import SSEParser
from gptalk_proto.testing._reference_sse import reference_parse
from gptalk_proto.testing.strategies import chunkings

from .sse_cases import cut_at, feed_all

ENDS = [b"\r\n", b"\r\n", b"\n", b"\r"]
VALUE_SIZES = [0, 1, 5, 100, 127, 128, 300, 1100, 2100, 5000]
PIECES = [b"a", b"\xc3\xa9", b"\xe2\x9c\x93", b"\xe2\x9c", b"\r", b" ", b":"]


@st.composite
def values(draw: st.DrawFn, size: int) -> bytes:
    if draw(st.integers(0, 4)) == 0:
        size = draw(st.sampled_from(VALUE_SIZES))  # a line unlike the others
    piece = draw(st.sampled_from(PIECES))
    value = (piece * (size // len(piece) + 1))[:size]
    if draw(st.integers(0, 3)):
        value = value.replace(b"\r", b"a")  # most values hold no line end
    elif value and draw(st.booleans()):
        at = draw(st.integers(0, len(value) - 1))
        value = value[:at] + b"\r" + value[at + 1 :]  # a lone CR somewhere
    return value


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    end = draw(st.sampled_from([b"\r\n", b"\n"]))  # the stream's usual line end
    size = draw(st.sampled_from(VALUE_SIZES))  # its usual value size
    out = []
    for number in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(["simple", "simple", "simple", "named", "other"]))

        def line_end() -> bytes:
            return end if draw(st.integers(0, 9)) else draw(st.sampled_from(ENDS))

        if kind == "simple":
            out.append(b"data: " + draw(values(size)) + line_end() + line_end())
        elif kind == "named":
            block = b"id: %d" % number + line_end() + b"event: up" + line_end()
            for _ in range(draw(st.integers(1, 3))):
                block += b"data: " + draw(values(size)) + line_end()
            out.append(block + line_end())
        else:
            out.append(
                draw(st.sampled_from([b": ping", b"retry: 25", b"data", b"event: x", b""]))
                + line_end()
            )
    return b"".join(out)


@settings(max_examples=400, deadline=None)
@given(streams(), st.data())
def test_line_end_paths_match_the_reference(stream: bytes, data: st.DataObject) -> None:
    for tail in (0, 2):
        chunks = data.draw(chunkings(stream), label="chunks")
        # Events, last event ID and retry, as the reference parser has them.
        assert feed_all(chunks, SSEParser(growing_tail=tail)) == reference_parse(stream)


@pytest.mark.parametrize("tail", [0, 2])
@pytest.mark.parametrize(
    ("name", "stream", "cuts"),
    [
        # Lines of a few hundred bytes, split then checked: a lone CR inside
        # one value is a line end of its own.
        (
            "checked values",
            b"".join(b"data: " + b"v" * 300 + b"\r\n\r\n" for _ in range(6))
            + b"data: "
            + b"w" * 150
            + b"\r"
            + b"w" * 150
            + b"\r\n\r\n"
            + b"data: "
            + b"x" * 300
            + b"\r\n\r\n",
            [],
        ),
        # The same, the last data line ended by a lone LF and its blank line
        # by a CRLF: its value keeps its last byte.
        (
            "checked values, lone LF last",
            b"".join(b"data: " + b"v" * 300 + b"\r\n\r\n" for _ in range(6))
            + b"data: "
            + b"w" * 300
            + b"\n\r\n",
            [],
        ),
        # A long line completed by a large chunk, its blank line next: a lone
        # CR inside it splits it.
        (
            "completed line",
            b"data: "
            + b"y" * 6000
            + b"\r"
            + b"z" * 6000
            + b"\r\n\r\n"
            + b"data: end\r\n\r\n" * 900,
            [5000],
        ),
        (
            "completed line, LF inside the view",
            b"data: " + "\u00e9".encode() * 3000 + b"\r\n\r\ndata: " + b"q" * 9000 + b"\r\n\r\n",
            [100, 7000],
        ),
    ],
)
def test_line_end_paths_examples(name: str, stream: bytes, cuts: list[int], tail: int) -> None:
    assert feed_all(cut_at(stream, cuts), SSEParser(growing_tail=tail)) == reference_parse(
        stream
    ), name
