"""Adversarial cases for the plain-head fast path (``_head.read_head`` in the
response reader): a head trickled in tiny pieces must cost linear work, as
it does in h11, and still read exactly as h11 reads it."""

from __future__ import annotations

import pytest

from gptalk_proto import _head, _http11

from .test_head import through_h11, through_ours


def _trickled_head(size: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\nx-a: " + b"v" * size + b"\r\ncontent-length: 2\r\n\r\nhi"


def test_a_head_sent_a_byte_at_a_time_is_not_rescanned_per_byte() -> None:
    # Found: read_head rescanned (and the reader re-joined) every byte of the
    # unfinished head at each read: a 64 KiB head sent a byte at a time cost
    # about 2 x 10^9 byte steps (seconds of CPU; h11 keeps its place).  The
    # bytes read_head is shown must stay linear in the head's size.
    head = _trickled_head(200)  # within the tests' 256-byte head cap
    scanned = 0
    original = _head.read_head

    def counting(data: bytes, max_head_size: int) -> object:
        nonlocal scanned
        scanned += len(data)
        return original(data, max_head_size)

    pieces = [head[i : i + 1] for i in range(len(head))]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_http11, "read_head", counting)
        ours = through_ours(pieces, "GET", False, False)
    assert ours == through_h11(pieces, "GET", False, False)
    assert ours[2] == "end"
    # Before the fix: sum of all prefixes, about len(head)**2 / 2 (~30000 here).
    assert scanned <= 40 * len(head)


@pytest.mark.parametrize("step", [1, 2, 3, 7, 50])
@pytest.mark.parametrize("size", [0, 20, 100, 230, 260])
def test_trickled_heads_equal_h11(step: int, size: int) -> None:
    # Past the wait count h11 takes over mid-head; whatever the cut, the
    # same head, body, framing and leftovers as h11 alone (260: over the cap).
    head = _trickled_head(size) + b"HTTP/1.1 200 OK\r\n"
    pieces = [head[i : i + step] for i in range(0, len(head), step)]
    for eof in (False, True):
        assert through_ours(pieces, "GET", False, eof) == through_h11(pieces, "GET", False, eof)
