"""Adversarial cases for the chunked decoder: a size line or trailer section
trickled in tiny reads costs linear work and decodes as when read whole."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from gptalk_proto import RemoteProtocolError
from gptalk_proto._http11 import ChunkedDecoder

LIMIT = 4096


def _decode(pieces: list[bytes]) -> tuple[bytes, bool, bytes, str | None]:
    decoder = ChunkedDecoder(max_line=LIMIT)
    body = b""
    try:
        for piece in pieces:
            body += decoder.feed(piece)
    except RemoteProtocolError as exc:
        partial: bytes = getattr(exc, "partial", b"")
        return body + partial, decoder.done, decoder.leftover, str(exc)
    return body, decoder.done, decoder.leftover, None


@contextmanager
def _counting_kept() -> Iterator[list[int]]:
    """Counts the bytes the decoder keeps (copies) while the block runs: a
    one-item list, read after the block."""
    kept = [0]
    original = ChunkedDecoder._keep

    def counting(self: ChunkedDecoder, buf: bytes, pos: int) -> None:
        kept[0] += len(buf) - pos
        original(self, buf, pos)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ChunkedDecoder, "_keep", counting)
        yield kept


def test_a_size_line_sent_a_byte_at_a_time_is_not_rescanned_per_byte() -> None:
    # Found: every read re-joined the unfinished size line and searched all
    # of it: a 60 KB chunk extension sent a byte at a time cost ~1.6 s of CPU.
    # Counted here: the bytes the decoder kept (copied) over the whole read.
    line = b"5;" + b"a" * 3000 + b"\r\nhello\r\n0\r\n\r\n"
    with _counting_kept() as kept:
        assert _decode([line[i : i + 1] for i in range(len(line))])[:2] == (b"hello", True)
    assert kept[0] <= 4 * len(line)  # before: about len(line) ** 2 / 2


STREAMS = [
    b"5;" + b"a" * 300 + b"\r\nhello\r\n0\r\n\r\nNEXT",
    b"5\r\nhello\r\n0\r\nx-a: 1\r\n folded\r\ny: 2\r\n\r\nNEXT",
    b"5\r\nhello\r\n0\r\nx-a: 1\n\nNEXT",
    b"5\r\nhello\r\n0\r\n\nNEXT",
    b"5\n\n\n\r\nhello\r\n0\r\n\r\n",  # bare LFs in a size line: refused
    b"5\r\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhello\r\n0\r\nbad line\r\n\r\n",
]


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("step", [1, 2, 3, 5, 64])
def test_trickled_chunked_bodies_decode_as_whole(stream: bytes, step: int) -> None:
    whole = _decode([stream])
    pieces = [stream[i : i + step] for i in range(0, len(stream), step)]
    assert _decode(pieces) == whole
    # Empty reads change nothing.
    assert _decode([p for piece in pieces for p in (piece, b"")]) == whole


@pytest.mark.parametrize(
    ("stream", "body"),
    [
        (b"5;" + b"a" * (LIMIT + 200) + b"\r\nhello\r\n0\r\n\r\n", b""),
        (b"5\r\nhello\r\n0\r\n" + b"x: y\r\n" * 900 + b"\r\n", b"hello"),
    ],
)
@pytest.mark.parametrize("step", [1, 2, 3, 5, 64])
def test_trickled_lines_over_the_cap_fail_as_before(stream: bytes, body: bytes, step: int) -> None:
    # (Read whole, such a line is accepted, as h11 accepts a whole head over
    # its cap: the cap bounds what waits for a line end.)
    pieces = [stream[i : i + step] for i in range(0, len(stream), step)]
    got, done, leftover, error = _decode(pieces)
    assert (got, done, leftover) == (body, True, b"")
    assert error is not None
    assert f"over {LIMIT} bytes without a line end" in error


TRAILER_STREAMS = [
    b"0\r\nx: 1\r\ny: 2\r\n\r\nNEXT",
    b"0\r\nx: 1\ny: 2\n\nNEXT",
    b"0\r\nx: 1\r\n\nNEXT",
    b"0\r\n\r\nNEXT",
    b"0\r\n\nNEXT",
    b"0\r\nx: 1\r\n folded\r\n\r\n",
    b"0\r\nx: 1\r\r\n\r\n",
    b"0\r\nbad\r\n\r\n",
    b"1\r\na\r\n0\r\nx:1\r\n\r\r\n\r\n",
]


@pytest.mark.parametrize("stream", TRAILER_STREAMS)
def test_trailers_cut_anywhere_decode_as_whole(stream: bytes) -> None:
    whole = _decode([stream])
    n = len(stream)
    for a in range(n + 1):
        for b in range(a, n + 1):
            for c in range(b, min(n, b + 3) + 1):
                pieces = [stream[:a], stream[a:b], stream[b:c], stream[c:]]
                assert _decode(pieces) == whole, pieces


def test_trailer_lines_one_per_read_are_not_rescanned() -> None:
    # Trailer lines sent one per read (each with its LF): the section was
    # joined and searched again at every read (0.75 s for 60 KB).
    pieces = [b"0\r\n", *([b"x: y\r\n"] * 600), b"\r\nNEXT"]
    with _counting_kept() as kept:
        assert _decode(pieces) == (b"", True, b"NEXT", None)
    assert kept[0] <= 4 * sum(map(len, pieces))
