"""Helpers for the SSEParser tests (test_sse_parsing, test_sse_interpretation,
test_sse_encoding; test_sse_properties uses feed_all and outcome).

Every stream in those tests goes through :func:`check_stream`, which feeds it
whole, one byte at a time and at seeded random split points, and also runs the
reference parser on it: all must give the same events, last event ID and retry.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from gptalk_proto import SSEEvent, SSEParser, SSESizeError
from gptalk_proto.testing._reference_sse import reference_parse

Outcome = tuple[list[SSEEvent], str, "int | None"]


def ev(data: str, event: str = "message", id: str = "", retry: int | None = None) -> SSEEvent:
    """Shorthand for an expected event."""
    return SSEEvent(event, data, id, retry)


def feed_all(chunks: Iterable[bytes], parser: SSEParser | None = None) -> Outcome:
    """Feed every chunk, close, and return (events, last_event_id, retry)."""
    parser = parser if parser is not None else SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    assert parser.close() == []
    return events, parser.last_event_id, parser.retry


def iter_all(chunks: Iterable[bytes], parser: SSEParser) -> Outcome:
    """:func:`feed_all` through ``feed_iter`` (which takes feed_long's
    chunks without feed's steps before it), each iterator drained at once.

    ``parser`` must be fresh: a twin of it (the same settings) is fed the
    same chunks through ``feed_values``, which must give the same outcome
    (each value the event it stands for)."""
    chunks = list(chunks)
    twin = SSEParser(
        max_line_size=parser.max_line_size,
        max_event_size=parser.max_event_size,
        last_event_id=parser.last_event_id,
        growing_tail=parser.growing_tail,
    )
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += parser.feed_iter(chunk)
    assert parser.close() == []
    twin_events: list[SSEEvent] = []
    for chunk in chunks:
        before, values = twin.feed_values(chunk)
        last_id = twin.last_event_id
        twin_events += before
        twin_events += [SSEEvent("message", value, last_id, None) for value in values]
    assert twin.close() == []
    outcome = events, parser.last_event_id, parser.retry
    assert (twin_events, twin.last_event_id, twin.retry) == outcome
    return outcome


def cut_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` cut at the given offsets (sorted; repeats give empty chunks)."""
    points = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def random_chunks(data: bytes, seed: int) -> list[bytes]:
    """Cut ``data`` at seeded random points (repeated points give empty chunks)."""
    rng = random.Random(seed)
    cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(1, max(1, len(data)))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def chunkings(data: bytes, seeds: int = 6) -> list[tuple[str, list[bytes]]]:
    """The whole stream, one byte at a time, and ``seeds`` random splits."""
    ways = [("whole", [data]), ("bytewise", bytewise(data))]
    ways += [(f"seed-{seed}", random_chunks(data, seed)) for seed in range(seeds)]
    return ways


def check_stream(
    data: bytes,
    events: Sequence[SSEEvent],
    *,
    last_event_id: str = "",
    retry: int | None = None,
) -> None:
    """Assert every chunking of ``data`` (and the reference parser) gives this result."""
    expected = (list(events), last_event_id, retry)
    for name, chunks in chunkings(data):
        assert feed_all(chunks) == expected, f"chunking {name}: {chunks!r:.300}"
    assert reference_parse(data) == expected, "reference parser"


def case(
    id_: str,
    data: bytes,
    events: Sequence[SSEEvent],
    last_event_id: str = "",
    retry: int | None = None,
) -> Any:
    return pytest.param(data, events, last_event_id, retry, id=id_)


CASE_ARGS = ("data", "events", "last_event_id", "retry")


def run_case(
    data: bytes, events: Sequence[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    check_stream(data, events, last_event_id=last_event_id, retry=retry)


def outcome(
    chunks: Iterable[bytes], parser: SSEParser
) -> tuple[list[SSEEvent], str, int | None, type[Exception] | None]:
    """(events incl. the error's .events, last_event_id, retry, error class)."""
    events: list[SSEEvent] = []
    try:
        for chunk in chunks:
            events += parser.feed(chunk)
    except SSESizeError as exc:
        return events + exc.events, parser.last_event_id, parser.retry, type(exc)
    parser.close()
    return events, parser.last_event_id, parser.retry, None


def lines_through_loop(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The lines the parser's line-by-line loop (``SSEParser._process``) will
    see, collected as it sees them: the tests of the paths that skip it."""
    seen: list[str] = []
    process = SSEParser._process

    def counting(self: SSEParser, lines: Iterable[str]) -> list[SSEEvent]:
        lines = list(lines)
        seen.extend(lines)
        return process(self, lines)

    monkeypatch.setattr(SSEParser, "_process", counting)
    return seen
