"""The sans-IO half of replay, without a driver: timing and re-chunking are
pure computations over a cassette (the drivers only sleep until the due time
this machine gives)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from gptalk_proto.cassette import (
    MAX_RANDOM_PIECE,
    Cassette,
    CassetteError,
    RecordedRequest,
    Replayer,
    ReplayState,
    ReplayTiming,
    rechunker,
)

PLAIN = Path(__file__).resolve().parent.parent / "cassettes" / "plain-chat.json"


def request_bytes(request: RecordedRequest) -> bytes:
    """The recorded request back on the wire, as the client sent it."""
    head = f"{request.method} {request.target} HTTP/1.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in request.headers)
    return (head + "\r\n").encode("latin-1") + request.body


def replay_first(cassette: Cassette, timing: ReplayTiming, cut: str) -> list[tuple[float, bytes]]:
    """Send the first recorded request at t=10 and take the answer."""
    state = ReplayState(Replayer(cassette).connection(), timing, rechunker(cut))
    first = cassette.interactions[0]
    state.sent(request_bytes(first.request), now=10.0)
    got = []
    while True:
        due, data = state.next(1 << 20)
        if data is None or state.connection.current is not first:
            break
        got.append((due, data))
        if not state.pieces and state.connection.at_eof:
            break
        if sum(len(d) for _, d in got) == len(first.response.wire):
            break
    return got


def test_instant_timing_is_due_at_the_send_time_and_keeps_the_bytes() -> None:
    cassette = Cassette.loads(PLAIN.read_text())
    got = replay_first(cassette, ReplayTiming(), "recorded")
    assert got, "the first interaction has a response"
    assert b"".join(data for _, data in got) == cassette.interactions[0].response.wire
    assert {due for due, _ in got} <= {0.0, 10.0}


def test_recorded_timing_adds_the_recorded_gaps_scaled() -> None:
    cassette = Cassette.loads(PLAIN.read_text())
    first = cassette.interactions[0]
    got = replay_first(cassette, ReplayTiming(speed=2.0), "recorded")
    expected = [10.0 + max(chunk.t - first.request.t, 0.0) / 2.0 for chunk in first.response.chunks]
    assert [due for due, _ in got] == pytest.approx(expected[: len(got)])


def test_bytes_rechunking_cuts_single_bytes() -> None:
    cassette = Cassette.loads(PLAIN.read_text())
    got = replay_first(cassette, ReplayTiming(), "bytes")
    assert all(len(data) == 1 for _, data in got)
    assert b"".join(data for _, data in got) == cassette.interactions[0].response.wire


def test_random_rechunking_takes_its_entropy_from_the_caller() -> None:
    data = bytes(range(256)) * 8
    draws: list[tuple[int, int]] = []

    def randint(a: int, b: int) -> int:
        draws.append((a, b))
        return random.Random(len(draws)).randint(a, b)

    pieces = rechunker(randint)(data)
    assert b"".join(pieces) == data
    assert len(pieces) == len(draws)
    assert set(draws) == {(1, MAX_RANDOM_PIECE)}
    assert all(1 <= len(piece) <= MAX_RANDOM_PIECE for piece in pieces)


def test_a_bad_rechunk_and_bad_timings_are_refused() -> None:
    with pytest.raises(ValueError, match="rechunk"):
        rechunker("lines")
    for speed in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="speed"):
            ReplayTiming(speed=speed)
    with pytest.raises(ValueError, match="max_gap"):
        ReplayTiming(speed=1.0, max_gap=float("nan"))


def test_waiting_for_bytes_the_cassette_lacks_is_a_cassette_error() -> None:
    cassette = Cassette.loads(PLAIN.read_text())
    state = ReplayState(Replayer(cassette).connection(), ReplayTiming(), rechunker("recorded"))
    with pytest.raises(CassetteError, match="before any request"):
        state.next(100)


LONG = PLAIN.parent / "long-reply.json"


@pytest.mark.parametrize("speed", [None, 2.0])
@pytest.mark.parametrize("max_bytes", [1, 7, 100, 4096, 1 << 20])
def test_whole_reads_go_as_the_queue_would_give_them(max_bytes: int, speed: float | None) -> None:
    """The ``"recorded"`` cut hands a read that fits over as it is (no queue);
    the same cut by another function goes the queue's way: the same pieces,
    due at the same times."""
    cassette = Cassette.loads(LONG.read_text())
    stream = cassette.interactions[-1]

    def pieces(cut: Callable[[bytes], list[bytes]]) -> list[tuple[float, bytes | None]]:
        state = ReplayState(Replayer(cassette).connection(), ReplayTiming(speed), cut)
        got = []
        for item in cassette.interactions:
            state.sent(request_bytes(item.request), now=10.0)
            while True:
                try:
                    got.append(state.next(max_bytes))
                except CassetteError:
                    break  # nothing more until the next request
        return got

    fast, queued = pieces(rechunker("recorded")), pieces(lambda data: [data])
    assert fast == queued
    assert all(len(data or b"") <= max_bytes for _, data in fast)
    assert b"".join(data or b"" for _, data in fast) == b"".join(
        item.response.wire for item in cassette.interactions
    )
    if max_bytes == 1 << 20:
        # Each recorded read, the very bytes object the cassette holds.
        recorded = [chunk.data for chunk in stream.response.chunks]
        assert all(a is b for (_, a), b in zip(fast[-len(recorded) :], recorded, strict=True))


@pytest.mark.parametrize("cut", ["recorded", "bytes", "random"])
@pytest.mark.parametrize("max_bytes", [1, 7, 100, 4096, 1 << 20])
def test_next_now_gives_what_next_gives(max_bytes: int, cut: str) -> None:
    """Instant replay's ``next_now`` hands over the bytes ``next`` would, in
    the same pieces, EOF as None, and the same error where the cassette has
    nothing more (whole reads that fit take its shortcut, the others ``next``)."""
    cassette = Cassette.loads(LONG.read_text())

    def reads(now: bool) -> tuple[list[bytes | None], list[str]]:
        how = random.Random(7).randint if cut == "random" else cut
        state = ReplayState(Replayer(cassette).connection(), ReplayTiming(), rechunker(how))
        got: list[bytes | None] = []
        errors = []
        for item in cassette.interactions:
            state.sent(request_bytes(item.request), now=0.0)
            while True:
                try:
                    got.append(state.next_now(max_bytes) if now else state.next(max_bytes)[1])
                except CassetteError as error:
                    errors.append(str(error))
                    break  # nothing more until the next request
        return got, errors

    (fast, fast_errors), (slow, slow_errors) = reads(True), reads(False)
    assert fast == slow
    assert fast_errors == slow_errors
    assert len(fast_errors) == len(cassette.interactions)
    assert all(data is None or 0 < len(data) <= max_bytes for data in fast)
    wire = b"".join(item.response.wire for item in cassette.interactions)
    assert b"".join(data or b"" for data in fast) == wire
