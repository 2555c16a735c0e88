"""Adversarial cases for ``GrowingValues.decode_blocks`` (see test_growing_blocks).

decode_blocks proves a line's bytes after "data: " start with the previous
value's (less its tail) and looks for the line's end, and with CRLF reads
for a lone CR, only past those bytes.  A hostile stream aims at that
boundary: CRs and LFs just before, at and after it, a character whose first
bytes end one value and whose last bytes start the next one's new bytes, a
CR ending a read with its LF in the next, lines exactly at the cap, a BOM,
"data:" without a space and other fields between the blocks.  The parser
with a grower handing over Extensions must give what the reference parser
and the parser without a grower give, and the chat the same deltas with
decode_blocks as without it.  Bounded by seeds, not time.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import pytest

import gptalk_proto as g
from gptalk_proto.sse import _growing
from gptalk_proto.testing._reference_sse import reference_parse

from .sse_cases import bytewise, cut_at
from .test_chat_extensions import _HEAD, _run_chat
from .test_growing_blocks import _counting, _outcome, _parser

_TAIL = g.ContentDecoder.growing_tail

# Inserted at (or within two bytes of) the end of the proved bytes.
_HOSTILE = [
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\r",
    b"\r\r",
    b"a\rb",
    b"a\nb",
    b"\x80",
    b"\xa9x",
    b"\xc3",
    b"\xff",
    b"\xef\xbb\xbf",
]
_GROWTH = [b"ab", b"\xc3\xa9", b"\xe2\x9c\x93", b"x" * 30, b"\\u00e9", b"q"]
# A character's first bytes at the end of one value, the rest where the next one's new bytes start.
_SPLIT_CHARS = [
    (b"\xc3", b"\xa9"),
    (b"\xe2", b"\x9c\x93"),
    (b"\xe2\x9c", b"\x93z"),
    (b"\xf0\x9f", b"\x98\x80"),
]
_FIELDS = [b"id: 7", b"event: x", b": c", b"retry: 5", b"data:nospace", b"id", b"data"]


def _stream(rng: random.Random) -> tuple[bytes, list[int]]:
    """A stream of long growing values with hostile steps among them, and
    the offsets of its data lines' ends (where reads are cut)."""
    kind = rng.choice(["lf", "crlf", "cr", "mixed"])

    def end() -> bytes:
        if kind == "mixed":
            return rng.choice([b"\n", b"\r\n", b"\r"])
        return {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}[kind]

    text = rng.choice([b"x", "caf\u00e9 ".encode(), "\u2713".encode()]) * rng.randint(700, 1400)
    value = b'{"content": "' + text + b'"}'
    out = [b"\xef\xbb\xbf"] if rng.random() < 0.1 else []
    ends: list[int] = []
    rest: bytes | None = None  # a split character's last bytes, for the next value
    for _ in range(rng.randint(2, 12)):
        step = rng.random()
        stem = len(value) - _TAIL
        if rest is not None and rng.random() < 0.7:
            value = value[:stem] + rest + value[stem:]
            rest = None
        elif step < 0.45:
            value = value[:stem] + rng.choice(_GROWTH) + value[stem:]
        elif step < 0.65:
            at = max(13, stem + rng.choice([-2, -1, 0, 0, 0, 1, 2]))
            value = value[:at] + rng.choice(_HOSTILE) + value[at:]
        elif step < 0.7:
            value = value[: len(value) - rng.randint(1, 40)] + value[-_TAIL:]  # shrinks
        elif step < 0.75:
            first, rest = rng.choice(_SPLIT_CHARS)
            value = value[:stem] + first + value[stem:]
        elif step < 0.8:
            value = value[:stem]  # its tail gone: the value is the proved bytes
        elif step < 0.85:
            out.append(rng.choice(_FIELDS) + end())
        elif step < 0.9:
            value = value[:stem] + rng.choice([b"\xc3\xa9", b"\r", b"\x80"])  # a tail not ASCII
        out.append((b"data: " if rng.random() > 0.05 else b"data:") + value + end())
        ends.append(sum(map(len, out)) - 1)
        if rng.random() < 0.9:
            out.append(rng.choice([end(), end(), b"\r\r", b"\n\r", b"\r\n", b"\n"]))
    return b"".join(out), ends


def _chunkings(
    rng: random.Random,
    stream: bytes,
    ends: list[int],
    offsets: Sequence[int] = (-3, -2, -1, 0, 1, 2),
    steps: Sequence[int] = (1000, 2047, 2048, 2049, 3001, 4096, 16384),
) -> list[list[bytes]]:
    """The stream whole, at random cuts, cut within ``offsets`` of its line
    ends (``ends``), and in reads of one of ``steps`` bytes."""
    size = len(stream)
    near = {min(size, max(0, e + rng.choice(offsets))) for e in ends}
    step = rng.choice(steps)
    return [
        [stream],
        cut_at(stream, sorted(rng.randint(0, size) for _ in range(rng.randint(1, 8)))),
        cut_at(stream, sorted(near)),  # at the line ends: a CR ends a read, its LF the next
        [stream[i : i + step] for i in range(0, size, step)],
    ]


@pytest.mark.parametrize("block", range(6))
def test_hostile_boundaries_equal_the_reference_and_the_plain_parser(block: int) -> None:
    # 100 streams a case; a mutation of any of decode_blocks'
    # tests (CR, CRLF, blank line, continuation byte, cap, tail) fails some.
    for seed in range(block * 100, block * 100 + 100):
        rng = random.Random(seed)
        stream, ends = _stream(rng)
        events, last_id, _ = reference_parse(stream)
        for chunks in _chunkings(rng, stream, ends):
            for lazy in (False, True):
                got = _outcome(_parser(extensions=True), chunks, lazy)
                assert got == (events, last_id, None), (seed, [len(c) for c in chunks], lazy)
                assert _outcome(_parser(extensions=False), chunks, lazy) == got
            # A cap exactly at a long line's length, or a byte either side.
            lines = stream.replace(b"\r", b"\n").split(b"\n")
            cap = max(map(len, lines)) + rng.choice([-1, 0, 0, 1])
            plain = _outcome(_parser(extensions=False, max_line=cap), chunks)
            assert _outcome(_parser(extensions=True, max_line=cap), chunks) == plain, (seed, cap)


def _growing_lines(end: bytes, count: int = 6) -> list[bytes]:
    base = ("caf\u00e9 \u2713 " * 400).encode()
    return [
        b"data: " + b'{"content": "' + base[: 2400 + 40 * n] + b'"}' + end for n in range(count)
    ]


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_a_character_split_between_values_byte_by_byte(end: bytes) -> None:
    # Each value ends with a character's first bytes; the next one's new
    # bytes start with its last ones (a continuation byte at the proved
    # bytes' end): decoded whole, as the reference does.
    value = b'{"content": "' + b"\xe2\x9c\x93" * 1000
    stream = b""
    for first, rest in [(b"\xe2", b"\x9c\x93"), (b"\xf0\x9f\x98", b"\x80"), (b"\xc3", b"\xa9")]:
        stream += b"data: " + value + first + b'"}' + end + end
        value += first + rest
        stream += b"data: " + value + b'"}' + end + end
    expected = (reference_parse(stream)[0], "", None)
    assert _outcome(_parser(extensions=True), bytewise(stream)) == expected
    for cut in range(len(stream) // 2 - 8, len(stream) // 2 + 8):
        assert _outcome(_parser(extensions=True), [stream[:cut], stream[cut:]]) == expected


@pytest.mark.parametrize("lazy", [False, True])
def test_a_cr_ending_each_read_its_lf_in_the_next(lazy: bool) -> None:
    # A CRLF stream cut right after each CR (the read's last byte ends its
    # line, the LF opening the next read is swallowed), and at the bytes
    # around the proved ones' end, with a BOM, "data:" without a space and
    # other fields between the blocks.
    lines = _growing_lines(b"\r\n")
    stream = b"\xef\xbb\xbf" + lines[0] + b"\r\n" + lines[1] + b"\r\n" + b"id: 4\r\n: c\r\n"
    stream += lines[2] + b"\r\n" + lines[3].replace(b"data: ", b"data:") + b"\r\n"
    stream += lines[4] + b"\r\n" + b"event: e\r\n" + lines[5] + b"\r\n"
    expected = reference_parse(stream)
    crs = [i + 1 for i in range(len(stream)) if stream[i] == 0x0D]
    assert _outcome(_parser(extensions=True), cut_at(stream, crs), lazy) == (
        expected[0],
        expected[1],
        None,
    )
    second = 3 + len(lines[0]) + 2  # where lines[1] starts
    proved = second + len(lines[0]) - 2 - _TAIL  # its bytes past lines[0]'s value less its tail
    for at in range(proved - 3, proved + 4):
        for chunks in (
            [stream[:at], stream[at:]],
            [stream[:second], stream[second:at], stream[at:]],
        ):
            assert _outcome(_parser(extensions=True), chunks, lazy) == (
                expected[0],
                expected[1],
                None,
            )


@pytest.mark.parametrize("end", [b"\n", b"\r\n"])
def test_lines_exactly_at_the_cap_in_one_read(end: bytes) -> None:
    # A read holding lines of the cap's length and one a byte over it
    # (LF: feed_long's, after a read that left 2 KB of a line pending; a
    # read of several events over the event cap goes the checked way).
    lines = _growing_lines(end, count=8)
    stream = b"".join(line + end for line in lines)
    for over in (3, 5, 7):
        for cap in (len(lines[over]) - len(end), len(lines[over]) - len(end) - 1):
            second = len(lines[0]) + len(end)
            for cuts in ([second + 2100], [second + 2100, second + 9000], [second + 100], []):
                chunks = cut_at(stream, cuts)
                plain = _outcome(_parser(extensions=False, max_line=cap), chunks)
                assert _outcome(_parser(extensions=True, max_line=cap), chunks) == plain
                assert _outcome(_parser(extensions=True, max_line=cap), chunks, lazy=True) == plain


def _chat_stream(rng: random.Random) -> bytes:
    end = rng.choice([b"\n", b"\r\n"])
    text = rng.choice(['The quick brown fox; caf\u00e9 \u2713 "q" \\ \n', "abc" * 12]) * 300
    ensure_ascii = rng.random() < 0.5
    size = rng.randint(80, 120)
    events = []
    for _ in range(rng.randint(10, 40)):
        data = json.dumps({"content": text[: size * 32]}, ensure_ascii=ensure_ascii).encode()
        step = rng.random()
        if step < 0.04:
            at = len(data) - 2 + rng.choice([-1, 0, 0, 1])
            data = (
                data[:at] + rng.choice([b"\r", b"\n", b"\r\n", b"\x80", b"\xc3", b'"']) + data[at:]
            )
        elif step < 0.1:
            events.append(rng.choice([b"id: 3", b"event: ping", b": hb", b"retry: 9"]) + end)
        size += rng.choice([1, 1, 1, 2, 0, -1, 5])
        events.append(b"data: " + data + end + end)
    body = b"".join(events) + b"data: [DONE]" + end + end
    pieces = [body[i : i + 20000] for i in range(0, len(body), 20000)]
    return _HEAD + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def test_the_chat_gives_the_same_deltas_without_decode_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ClientConnection fed mutated GPTalk streams at a read size each: the
    # chat's events are those of the path without decode_blocks.
    def off(
        self: _growing.GrowingValues,
        head: bytes,
        view: memoryview,
        start: int,
        *_: object,
        **__: object,
    ) -> tuple[list[str], int]:
        return [], start

    taken: list[int] = []
    counting = _counting(taken)

    for seed in range(40):
        rng = random.Random(seed)
        stream = _chat_stream(rng)
        step = rng.choice([1024, 2049, 3000, 4096, 8192, 16384, 65536])
        reads = [stream[i : i + step] for i in range(0, len(stream), step)]
        chat = g.Chat("hi", credentials=g.Credentials(), fingerprint="0" * 32)
        monkeypatch.setattr(_growing.GrowingValues, "decode_blocks", counting)
        seen = _run_chat(chat, stream, reads)
        monkeypatch.setattr(_growing.GrowingValues, "decode_blocks", off)
        chat = g.Chat("hi", credentials=g.Credentials(), fingerprint="0" * 32)
        assert [repr(e) for e in _run_chat(chat, stream, reads)] == [repr(e) for e in seen], seed
    assert sum(taken) >= 200, sum(taken)  # the path ran
