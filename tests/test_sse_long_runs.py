"""A run of long data blocks read in small chunks (SSEParser._long_run).

Once a chunk was all long "data: V" blocks (each with its blank line), the
next chunk goes to sse/_long.py's feed_long whatever is pending: nothing, a
few bytes of the next line, or less than LONG_LINE of it (at 4 KiB reads of
8 KB lines, most chunks).  Each case here ends such a run at a chunk's end,
with 0 to a few bytes of the next line pending, and puts after it what
feed_long must hand back to feed (short lines, other fields, CRs, a line
cut in its "data: " prefix, invalid UTF-8, a cap), fed whole, byte by byte,
at random cuts and at fixed read sizes, with feed and feed_iter, with and
without ``growing_tail``, against the reference parser.
"""

from __future__ import annotations

import pytest

from gptalk_proto import LocalProtocolError, RemoteProtocolError, SSELineTooLong, SSEParser
from gptalk_proto.sse import _long
from gptalk_proto.sse._event import SSEEvent
from gptalk_proto.sse._lines import LONG_LINE
from gptalk_proto.testing._reference_sse import reference_parse

from .sse_cases import bytewise, cut_at, feed_all, iter_all, random_chunks

TEXT = "caf\u00e9 \u2713 the quick brown fox ".encode()


def _cumulative(count: int, first: int, step: int) -> list[bytes]:
    """GPTalk's shape, one block each: each value the previous one with
    text before its closing '"}'."""
    body = (TEXT * ((first + step * count) // len(TEXT) + 1))[: first + step * count]
    return [b'data: {"content": "' + body[: first + step * n] + b'"}\n\n' for n in range(count)]


def _check(stream: bytes, cuts: list[int]) -> None:
    want = reference_parse(stream)
    ways = [
        [stream],
        cut_at(stream, cuts),
        *(random_chunks(stream, seed) for seed in range(3)),
        *([stream[i : i + read] for i in range(0, len(stream), read)] for read in (997, 4096)),
    ]
    if len(stream) < 30_000:
        ways.append(bytewise(stream))
    for tail in (0, 2):
        for chunks in ways:
            got = feed_all(chunks, SSEParser(growing_tail=tail))
            assert got == want, (tail, [len(c) for c in chunks][:12])
            got = iter_all(chunks, SSEParser(growing_tail=tail))
            assert got == want, ("feed_iter", tail, [len(c) for c in chunks][:12])


def test_a_run_read_in_4_kib_chunks_goes_to_feed_long(monkeypatch: pytest.MonkeyPatch) -> None:
    # Lines of 3 to 9 KB read 4 KiB at a time: most chunks leave less than
    # LONG_LINE of the next line pending, and feed_long still takes them
    # (feed runs for the first chunks only), with the reference's events.
    taken: list[bool] = []
    original = _long.feed_long

    def spy(self: SSEParser, data: bytes) -> list[SSEEvent] | None:
        done = original(self, data)
        taken.append(done is not None)
        return done

    fed: list[int] = []
    feed = SSEParser.feed

    def feed_spy(self: SSEParser, data: bytes) -> list[SSEEvent]:
        fed.append(len(data))
        return feed(self, data)

    monkeypatch.setattr("gptalk_proto.sse._parser.feed_long", spy)
    monkeypatch.setattr(SSEParser, "feed", feed_spy)
    stream = b"".join(_cumulative(60, 3000, 100))
    chunks = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
    for tail in (0, 2):
        taken.clear()
        fed.clear()
        assert iter_all(chunks, SSEParser(growing_tail=tail)) == reference_parse(stream)
        assert all(taken)
        # At most three each through feed_iter and feed_values (iter_all's twin).
        assert len(fed) <= 2 * 3 < len(chunks)


# What comes after a run that ended at a chunk's end (see _check's cuts).
AFTER = [
    b"data: short\n\n",
    b"data: a\n\ndata: b\n\n",
    b": a comment\n\n",
    b"id: 7\n\n",
    b"event: update\n",
    b"retry: 15\n",
    b"data\n\n",
    b"data:no space\n\n",
    b"\n",
    b"\n\n\n",
    b"\r\n",
    b"\r",
    b"data: a\rdata: b\n\n",
    b"data: x\r\n\r\n",
    b"data: \xff\xfe broken \xc3\n\n",
    b"\xef\xbb\xbfdata: a BOM mid-stream is data\n\n",
]


@pytest.mark.parametrize("after", AFTER)
@pytest.mark.parametrize("pending", [0, 1, 3, 5, 6, 7, 40])
def test_what_follows_a_run_that_ended_with_a_chunk(after: bytes, pending: int) -> None:
    # Long blocks, a chunk ending after one of them with `pending` bytes of
    # what follows, then what follows, then more long blocks.
    blocks = _cumulative(8, LONG_LINE + 100, 300)
    head = b"".join(blocks[:4])
    stream = head + after + b"".join(blocks[4:])
    _check(stream, [len(blocks[0]) + 100, len(head) - 50, len(head) + pending])


@pytest.mark.parametrize("pending", [0, 2, 6, 500])
def test_a_short_line_in_a_run_goes_feeds_way(pending: int) -> None:
    # A short data block completed by the chunk after a run: the general
    # rules take it (and the long ones after it).
    blocks = _cumulative(6, LONG_LINE + 10, 50)
    short = b"data: " + TEXT[:30] + b"\n\n"
    head = b"".join(blocks[:3])
    stream = head + short + b"".join(blocks[3:])
    _check(stream, [len(head) + pending, len(head) + len(short) + pending])


def test_a_run_then_a_line_over_the_cap_and_then_nothing() -> None:
    # The line cap holds for a few bytes pending after a run: the error,
    # with the events before it, then the parser refuses, as feed does.
    blocks = _cumulative(3, LONG_LINE + 10, 50)
    parser = SSEParser(growing_tail=2, max_line_size=LONG_LINE + 200)
    run = b"".join(blocks) + b"data: "
    events = list(parser.feed_iter(run))
    assert events == reference_parse(b"".join(blocks))[0]
    with pytest.raises(SSELineTooLong) as raised:
        parser.feed_iter(b"x" * (LONG_LINE + 200))
    assert raised.value.events == []
    with pytest.raises(RemoteProtocolError, match="unusable"):
        parser.feed_iter(b"x\n\n")


def test_a_run_then_close() -> None:
    # close() ends the run: nothing is dispatched, and feeding refuses.
    blocks = _cumulative(3, LONG_LINE + 10, 50)
    parser = SSEParser(growing_tail=2)
    assert len(list(parser.feed_iter(b"".join(blocks) + b"data: x"))) == 3
    assert parser.close() == []
    with pytest.raises(LocalProtocolError):
        parser.feed_iter(b"\n\n")
    with pytest.raises(LocalProtocolError):
        parser.feed(b"\n\n")
