"""The split path for runs of id/event/data blocks (``split_blocks`` in
gptalk_proto/sse/_blocks.py): a text of such blocks is cut by string methods
and proven by counting its line ends.  Every line end the cuts do not account
for, wherever it hides (a lone CR or LF in an id, a type or a value, a CRLF
before a line that is not a data line), must send the text elsewhere; the
events are the reference parser's, fed whole, byte by byte, at random splits
and through ``feed_iter``; and the path is really taken by such streams."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_proto import SSEEvent, SSEParser
from gptalk_proto.sse import _blocks
from gptalk_proto.testing._reference_sse import reference_parse
from gptalk_proto.testing.strategies import chunkings

from .sse_cases import check_stream, feed_all, lines_through_loop

# Values with the separators' words in them, next to arbitrary ones.
words = st.sampled_from(["data: ", "id: ", "event: ", ": ", " ", "data:", "\x00", "caf\u00e9"])
values = st.lists(
    st.one_of(words, st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=6)),
    max_size=3,
).map("".join)

# What breaks a block's shape where the cuts would not see it, put anywhere
# in a block: line ends of every kind, alone or before lines that are not
# data lines, a second event line, a NUL (an id holding one is ignored), a
# blank line that does not start a block.
breakers = st.sampled_from(
    [
        "\n",
        "\r",
        "\r\n",
        "\r\r\n",
        "\n\r",
        "\nx",
        "\rdata: y",
        "\ndata: y",
        "\r\ndata: y",
        "\r\n: comment",
        "\r\nretry: 7",
        "\r\nevent: other",
        "\r\nid: other",
        "\r\n\r\n",
        "\n\ndata: y",
        "\r\n\r\nid: z",
        "\x00",
    ]
)


@st.composite
def split_block_streams(draw: st.DrawFn) -> bytes:
    """Mostly blocks of the split path's shape, some broken by a breaker,
    with LF, CRLF or mixed line ends."""
    ends = draw(st.sampled_from(["\n", "\r\n", "mixed"]))
    text = ""
    for _ in range(draw(st.integers(1, 30))):
        datas = draw(st.lists(values, min_size=1, max_size=4))
        lines = [f"id: {draw(values)}", f"event: {draw(values)}", *(f"data: {v}" for v in datas)]
        block = "\n".join(lines) + "\n\n"
        if ends != "\n":
            block = block.replace("\n", "\r\n")
        if ends == "mixed" and draw(st.integers(0, 3)) == 0:
            cut = draw(st.integers(0, block.count("\r\n") - 1))
            pieces = block.split("\r\n")
            block = "\r\n".join(pieces[: cut + 1]) + "\n" + "\r\n".join(pieces[cut + 1 :])
        if draw(st.integers(0, 7)) == 0:
            at = draw(st.integers(0, len(block)))
            block = block[:at] + draw(breakers) + block[at:]
        text += block
    return text.encode()


def _feed_iter_all(chunks: list[bytes]) -> tuple[list[SSEEvent], str, int | None]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed_iter(chunk))
    parser.close()
    return events, parser.last_event_id, parser.retry


@settings(max_examples=400, deadline=None)
@given(stream=split_block_streams(), data=st.data())
def test_split_blocks_match_the_reference(stream: bytes, data: st.DataObject) -> None:
    expected = reference_parse(stream)
    assert feed_all([stream]) == expected, "whole"
    chunks = data.draw(chunkings(stream), label="chunks")
    assert feed_all(chunks) == expected, "chunked"
    assert _feed_iter_all(chunks) == expected, "feed_iter, chunked"


def _text(blocks: list[str], ends: str) -> str:
    """Whole blocks, then the start of one more (what a read leaves)."""
    return ("".join(blocks) + "id: 9\nevent: e\ndata: cut").replace("\n", ends)


BLOCK = "id: 1\nevent: update\ndata: first\ndata: data: caf\u00e9\ndata: third\n\n"

# One block's lines broken each way a check of the split path catches (and
# the cuts alone do not see): no data line, no event line, an empty type, a
# line end in an id or a type, a NUL in an id, a CR or a lone LF in a value, a
# second event line, a line that is not a data line among the data lines.
BROKEN = [
    "id: 1\nevent: update\n\n",
    "id: 1\ndata: x\n\n",
    "id: 1\nevent: \ndata: x\n\n",
    "id: 1\rz\nevent: update\ndata: x\n\n",
    "id: 1\nz\nevent: update\ndata: x\n\n",
    "id: 1\x00\nevent: update\ndata: x\n\n",
    "id: 1\nevent: up\rdate\ndata: x\n\n",
    "id: 1\nevent: up\ndata: z\nevent: date\ndata: x\n\n",
    "id: 1\nevent: update\ndata: x\ry\n\n",
    "id: 1\nevent: update\ndata: x\nevent: other\ndata: y\n\n",
    "id: 1\nevent: update\ndata: x\nretry: 5\ndata: y\n\n",
    "id: 1\nevent: update\ndata: x\n: comment\n\n",
    "id: 1\nevent: update\ndata: x\n\n\n",
]


def _split(text: str, crlf: bool) -> tuple[list[SSEEvent] | None, str]:
    """split_blocks on the whole blocks of ``text`` (which starts with one),
    cut as the parser cuts a region; and the rest, from the last block."""
    blocks = text.removeprefix("id: ").split("\r\n\r\nid: " if crlf else "\n\nid: ")
    tail = blocks.pop()
    return _blocks.split_blocks(blocks, sum(map(len, blocks)), crlf), "id: " + tail


def _parse(text: str, read: int) -> list[SSEEvent]:
    stream = (text + "\n\n").encode()
    parser = SSEParser()
    events = []
    for start in range(0, len(stream), read):
        events += parser.feed(stream[start : start + read])
    assert (events, parser.last_event_id, parser.retry) == reference_parse(stream)
    return events


@pytest.mark.parametrize("ends", ["\n", "\r\n"])
def test_whole_blocks_are_split(ends: str) -> None:
    """A text of whole blocks and the start of one more: their events, and
    that start left to the caller as it came."""
    text = _text([BLOCK, BLOCK.replace("1", "2"), BLOCK.replace("update", " up date ")], ends)
    events, rest = _split(text, ends == "\r\n")
    assert events is not None
    assert rest == "id: 9\nevent: e\ndata: cut".replace("\n", ends)
    assert events == _parse(text, len(text) + 2)[:3]
    assert [event.data for event in events] == ["first\ndata: caf\u00e9\nthird"] * 3


@pytest.mark.parametrize("ends", ["\n", "\r\n"])
@pytest.mark.parametrize("broken", BROKEN)
@pytest.mark.parametrize("where", [0, 1, 2])
def test_broken_blocks_are_not_split(ends: str, broken: str, where: int) -> None:
    """Each break, first, in the middle or last of the whole blocks, turns
    the split path away, and the parser still gives the reference's events,
    fed whole and a few bytes at a time."""
    if ends == "\n" and "\r" in broken:
        return  # (LF regions hold no CR: feed normalised them)
    blocks = [BLOCK, BLOCK, BLOCK]
    blocks[where] = broken
    text = _text(blocks, ends)
    assert _split(text, ends == "\r\n")[0] is None
    for read in (len(text) + 2, 7, 1):
        _parse(text, read)


@pytest.mark.parametrize("ends", ["\n", "\r\n"])
@pytest.mark.parametrize("read", [1, 100, 4096, 16384])
def test_streams_of_blocks_take_the_split_path(
    monkeypatch: pytest.MonkeyPatch, ends: str, read: int
) -> None:
    """The multi-line events the benchmark reads: every read of more than a
    block is split (none goes on to the regular expression), and the lines
    loop sees only the block each read cuts in two; fed through feed_iter as
    the benchmark reads it, at reads from one byte to 16 KiB."""
    split = _blocks.split_blocks
    results: list[bool] = []

    def spying(blocks: list[str], size: int, crlf: bool) -> list[SSEEvent] | None:
        found = split(blocks, size, crlf)
        results.append(found is not None)
        return found

    monkeypatch.setattr(_blocks, "split_blocks", spying)
    seen = lines_through_loop(monkeypatch)
    block = "id: %d\nevent: update\ndata: first %d\ndata: caf\u00e9 \u2713\ndata: third\n\n"
    blocks = [(block % (n, n)).replace("\n", ends).encode() for n in range(400)]
    stream = b"".join(blocks)
    chunks = [stream[start : start + read] for start in range(0, len(stream), read)]
    expected = reference_parse(stream)
    assert _feed_iter_all(chunks) == expected
    split_or_not, looped = results[:], len(seen)
    check_stream(b"".join(blocks[:40]), expected[0][:40], last_event_id="39")
    if read < len(block) * 2:
        return  # (no read holds two whole blocks)
    assert split_or_not
    assert all(split_or_not), split_or_not
    # Each read: at most the lines of the block it cuts in two and of the
    # block the split leaves last (six each), and the blank line after.
    assert looped <= 13 * len(chunks), (looped, len(chunks))
