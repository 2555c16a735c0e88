"""``SSEParser.feed_iter``: the lazy form of ``feed``; and ``feed_values``,
which hands over the run of plain messages that ends a chunk as its data.

It parses its chunk in the call, as ``feed`` does (state, errors), and hands
over the same events, built as they are taken (``feed_values``: the events
before the run, then the run's values, each an event of type "message" with
the parser's last event ID and no retry).  Checked against ``feed`` on
every parametrized case of the SSE spec tests (whole, byte by byte, random
splits), on generated streams with small caps (errors included), with the
iterators of several calls left undrained until the end, and counted: a run
of simple blocks is not built before it is taken.
"""

from __future__ import annotations

import gc
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_proto import (
    LocalProtocolError,
    RemoteProtocolError,
    SSEEvent,
    SSEEventTooLarge,
    SSELineTooLong,
    SSEParser,
    SSESizeError,
)
from gptalk_proto.testing.strategies import chunkings as chunkings_of
from gptalk_proto.testing.strategies import sse_like_bytes

from . import test_sse_interpretation, test_sse_parsing
from .sse_cases import CASE_ARGS, chunkings, ev
from .test_sse_properties import caps  # the property tests' small caps: errors happen

Result = tuple[
    list[list[SSEEvent]], str, "int | None", "tuple[type[Exception], list[SSEEvent]] | None"
]


def _cases() -> list[Any]:
    """Every case of the spec tests: the parameter sets of their functions
    parametrized by ``CASE_ARGS``."""
    found = []
    for module in (test_sse_parsing, test_sse_interpretation):
        for _, function in inspect.getmembers(module, inspect.isfunction):
            for mark in getattr(function, "pytestmark", []):
                if mark.name == "parametrize" and mark.args[0] == CASE_ARGS:
                    found += mark.args[1]
    return found


CASES = _cases()


def by_feed(chunks: list[bytes], **caps: Any) -> Result:
    """Each chunk's events from ``feed``, the state at the end, and the error
    (its class and the events it carries), if any."""
    parser = SSEParser(**caps)
    out: list[list[SSEEvent]] = []
    try:
        for chunk in chunks:
            out.append(parser.feed(chunk))
    except SSESizeError as exc:
        return out, parser.last_event_id, parser.retry, (type(exc), exc.events)
    assert parser.close() == []
    return out, parser.last_event_id, parser.retry, None


def by_feed_iter(chunks: list[bytes], drain_late: bool = False, **caps: Any) -> Result:
    """The same through ``feed_iter``: each iterator drained at once, or all
    kept and drained only at the end (last first), after the parser moved on
    and was closed."""
    parser = SSEParser(**caps)
    iterators: list[Iterator[SSEEvent]] = []
    error = None
    try:
        for chunk in chunks:
            events = parser.feed_iter(chunk)
            iterators.append(events if drain_late else iter(list(events)))
    except SSESizeError as exc:
        error = (type(exc), exc.events)
    else:
        assert parser.close() == []
    drained = [list(events) for events in reversed(iterators)][::-1]
    return drained, parser.last_event_id, parser.retry, error


def by_feed_values(chunks: list[bytes], **caps: Any) -> Result:
    """The same through ``feed_values``, each value made the event it
    stands for (type "message", the last event ID after the call, no retry)."""
    parser = SSEParser(**caps)
    out: list[list[SSEEvent]] = []
    try:
        for chunk in chunks:
            events, values = parser.feed_values(chunk)
            last_id = parser.last_event_id
            out.append(events + [SSEEvent("message", value, last_id, None) for value in values])
    except SSESizeError as exc:
        return out, parser.last_event_id, parser.retry, (type(exc), exc.events)
    assert parser.close() == []
    return out, parser.last_event_id, parser.retry, None


def test_every_case_is_found() -> None:
    assert len(CASES) > 100


@pytest.mark.parametrize(CASE_ARGS, CASES)
def test_same_events_as_feed_on_every_case(
    data: bytes, events: list[SSEEvent], last_event_id: str, retry: int | None
) -> None:
    for name, chunks in chunkings(data):
        expected = by_feed(chunks)
        assert [one for read in expected[0] for one in read] == list(events), name
        assert by_feed_iter(chunks) == expected, name
        assert by_feed_iter(chunks, drain_late=True) == expected, name
        assert by_feed_values(chunks) == expected, name


# Streams that are mostly runs of simple blocks (the lazy path), and any
# SSE-like stream.
simple_blocks = st.lists(
    st.tuples(st.text(max_size=6), st.sampled_from(["\n", "\r\n", "\r"])), max_size=30
).map(lambda blocks: "".join(f"data: {v}{n}{n}" for v, n in blocks).encode())
streams = st.one_of(sse_like_bytes(), simple_blocks, st.binary(max_size=200))


@settings(max_examples=500, deadline=None)
@given(stream=streams, limits=caps, data=st.data())
def test_same_events_and_errors_as_feed(
    stream: bytes, limits: dict[str, Any], data: st.DataObject
) -> None:
    chunks = data.draw(chunkings_of(stream, allow_empty=True), label="chunks")
    expected = by_feed(chunks, **limits)
    assert by_feed_iter(chunks, **limits) == expected
    assert by_feed_iter(chunks, drain_late=True, **limits) == expected
    assert by_feed_values(chunks, **limits) == expected


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_undrained_iterators_stay_independent(end: str) -> None:
    """Runs of simple blocks, a pending event completed by the next read, a
    blank line that dispatches: every iterator gives its own chunk's events,
    however late it is drained."""
    reads = [
        f"data: a{end}{end}data: b{end}{end}data: c{end}",
        f"{end}data: d{end}{end}data: e",
        f"{end}{end}",
        f"data: f{end}{end}" * 3,
    ]
    parser = SSEParser()
    iterators = [parser.feed_iter(read.encode()) for read in reads]
    parser.close()
    assert [list(events) for events in reversed(iterators)] == [
        [ev("f")] * 3,
        [ev("e")],
        [ev("c"), ev("d")],
        [ev("a"), ev("b")],
    ]


def test_a_run_is_built_as_it_is_taken() -> None:
    """A chunk of 1,000 simple blocks: taking the first event builds one
    event, not 1,000 (each may then be freed before the next exists)."""

    def alive() -> int:
        return sum(type(one) is SSEEvent for one in gc.get_objects())

    parser = SSEParser()
    before = alive()
    events = parser.feed_iter(b"data: x\n\n" * 1000)
    first = next(events)
    assert alive() - before == 1
    assert [first, *events] == [ev("x")] * 1000


def test_the_line_cap_is_raised_in_the_call() -> None:
    """The error comes from the call, not from the iteration, and carries the
    events of the run before it, as feed's does."""
    chunk = b"data: a\n\ndata: b\n\n" + b"x" * 20
    expected = by_feed([chunk], max_line_size=10)
    parser = SSEParser(max_line_size=10)
    with pytest.raises(SSELineTooLong) as raised:
        parser.feed_iter(chunk)
    assert raised.value.events == [ev("a"), ev("b")]
    assert expected[3] == (SSELineTooLong, [ev("a"), ev("b")])
    with pytest.raises(RemoteProtocolError):
        parser.feed_iter(b"data: c\n\n")


def test_the_event_cap_is_raised_in_the_call() -> None:
    parser = SSEParser(max_event_size=4)
    with pytest.raises(SSEEventTooLarge) as raised:
        parser.feed_iter(b"data: a\n\ndata: 12345\n\n")
    assert raised.value.events == [ev("a")]


def test_close_after_feed_iter() -> None:
    """close() drops what is pending, as after feed; an iterator taken before
    it still gives its events; feeding after it raises in the call."""
    parser = SSEParser()
    events = parser.feed_iter(b"data: a\n\ndata: b\n\ndata: pending\n")
    assert parser.close() == []
    with pytest.raises(LocalProtocolError):
        parser.feed_iter(b"\n")
    assert list(events) == [ev("a"), ev("b")]


@pytest.mark.parametrize("tail", [0, 2])
@pytest.mark.parametrize("read", [1000, 4096, 16384, 1 << 20])
@pytest.mark.parametrize("ended", [b"\n\n", b""])
def test_feed_values_on_long_lines_then_one_over_the_cap(
    tail: int, read: int, ended: bytes
) -> None:
    # Runs of long lines (feed_long's chunks, a run left unbuilt in each)
    # and then a line over the cap, ended or still coming (the chunk's run
    # left unbuilt when the rest fails): the error carries every event
    # before it, the run's built, as feed's does.
    lines = [b"data: %d%s\n\n" % (n, b"x" * (2500 + 40 * n)) for n in range(40)]
    stream = b"".join(lines) + b"data: " + b"y" * 9000 + ended
    chunks = [stream[i : i + read] for i in range(0, len(stream), read)]
    expected = by_feed(chunks, max_line_size=8000, growing_tail=tail)
    assert expected[3] is not None  # the error came
    assert by_feed_values(chunks, max_line_size=8000, growing_tail=tail) == expected
    assert by_feed_iter(chunks, max_line_size=8000, growing_tail=tail) == expected
