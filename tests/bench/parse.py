"""Parse-only runners: bytes chunks in, events counted; the same input for all."""

from __future__ import annotations

import codecs
import gc
import time
from collections.abc import Callable
from itertools import repeat, starmap

from gptalk_proto import ContentDecoder, SSEEvent, SSEParser

from . import workloads
from .common import Row, Sample, Target, row, sample

Runner = Callable[[list[bytes]], int]


def ours(chunks: list[bytes]) -> int:
    """Our parser as the GPTalk client makes it: told that values grow before
    a two-byte tail (which changes no result, and costs nothing on other
    streams: only long values go through the check).  Read as a user who
    handles events one by one reads it: each event of ``feed_iter`` taken,
    and counted, in turn (every event is built)."""
    parser = SSEParser(growing_tail=ContentDecoder.growing_tail)
    count = 0
    for chunk in chunks:
        for _ in parser.feed_iter(chunk):
            count += 1
    return count


def framing_bound(chunks: list[bytes]) -> int:
    """Only cut the bytes into lines (bytes.split); no fields, no events.
    Events are counted as blank lines: the least any parser must do."""
    lines = 0
    tail = b""
    for chunk in chunks:
        parts = (tail + chunk).split(b"\n")
        tail = parts.pop()
        lines += len(parts)
    return lines // 2


def event_floor(chunks: list[bytes]) -> int:
    """The framing bound, plus the one event object a parser hands over per
    event (an ``SSEEvent`` built as our parser builds it, with a constant
    value), built by a C iterator and taken one by one, as :func:`ours`
    takes them: no parser that hands over events can go faster.  Informative."""
    new, pair = tuple.__new__, (SSEEvent, ("message", "", "", None))
    events = lines = 0
    tail = b""
    for chunk in chunks:
        parts = (tail + chunk).split(b"\n")
        tail = parts.pop()
        # Counted over the stream: a read may end between an event's lines.
        lines += len(parts)
        for _ in starmap(new, repeat(pair, lines // 2 - events)):
            events += 1
    return events


def event_list_floor(chunks: list[bytes]) -> int:
    """:func:`event_floor` with each read's events kept together in a list,
    as ``SSEParser.feed`` returns them (CPython's cyclic garbage collector
    then visits them while the list grows).  Informative."""
    new, cls = tuple.__new__, SSEEvent
    events = lines = 0
    tail = b""
    for chunk in chunks:
        parts = (tail + chunk).split(b"\n")
        tail = parts.pop()
        lines += len(parts)  # (see event_floor)
        built = [new(cls, ("message", "", "", None)) for _ in range(lines // 2 - events)]
        events += len(built)
    return events


def value_floor(chunks: list[bytes]) -> int:
    """What any parser handing over ``str`` values must at least do on a run
    of simple ``data:`` blocks, with no check at all: decode each read's
    whole blocks once, split the text into the values, and build one event
    per value as our parser builds them (``starmap`` over ``zip``), taken one
    by one.  Right only on such runs (the small-delta workloads); its gap to
    :func:`event_floor` is the price of a distinct ``str`` per event, which a
    parser cannot avoid.  Informative."""
    new, cls = tuple.__new__, repeat(SSEEvent)
    message, no_retry = repeat("message"), repeat(None)
    crlf = bool(chunks) and b"\r\n" in chunks[0]
    blank, separator = (b"\r\n\r\n", "\r\n\r\ndata: ") if crlf else (b"\n\n", "\n\ndata: ")
    events = 0
    tail = b""
    for chunk in chunks:
        region = tail + chunk
        end = region.rfind(blank)
        tail = region[end + len(blank) :]
        values = region[6:end].decode("utf-8", "replace").split(separator)
        fields = zip(message, values, repeat(""), no_retry)
        for _ in starmap(new, zip(cls, fields)):  # noqa: B905, RUF058 (as _events)
            events += 1
    return events


def seed(chunks: list[bytes]) -> int:
    """The original client's approach: lines, then ``startswith(b"data: ")``.
    Fast, and wrong on CR or CRLF line ends and multi-line data."""
    count = 0
    tail = b""
    for chunk in chunks:
        lines = (tail + chunk).split(b"\n")
        tail = lines.pop()
        for line in lines:
            if line.startswith(b"data: "):
                count += 1
    return count


def httpx_sse(chunks: list[bytes]) -> int:
    """httpx-sse's own decoders, fed as ``EventSource.aiter_sse`` feeds them
    (httpx's text decoding, then lines, then events)."""
    from httpx_sse._decoders import SSEDecoder, SSELineDecoder

    text = codecs.getincrementaldecoder("utf-8")("replace")
    lines = SSELineDecoder()
    decoder = SSEDecoder()
    count = 0
    for chunk in chunks:
        for line in lines.decode(text.decode(chunk)):
            if decoder.decode(line.rstrip("\n")) is not None:
                count += 1
    for line in lines.flush():
        if decoder.decode(line) is not None:
            count += 1
    return count


def sseclient_py(chunks: list[bytes]) -> int:
    """sseclient-py, reading from an iterator of chunks."""
    import sseclient

    return sum(1 for _ in sseclient.SSEClient(iter(chunks)).events())


PARSERS: dict[str, Runner] = {
    "gptalk-proto": ours,
    "httpx-sse": httpx_sse,
    "sseclient-py": sseclient_py,
    "seed split": seed,
    "framing bound": framing_bound,
}


# -- the parse-only matrix --------------------------------------------------------------

#: Parse measures: (name, the peer judged, its target).
CUMULATIVE = "SSE parser: GPTalk cumulative events"
SMALL = "SSE parser: small delta events"
MULTILINE = "SSE parser: multi-line events (id, event, 3 data lines)"
BOUND = "SSE parser: small deltas vs framing bound (split only)"
FLOOR = (
    "SSE parser: framing bound + one event object each, taken one by one,"
    " vs framing bound (informative)"
)
LIST_FLOOR = (
    "SSE parser: framing bound + one event object each, in a list per read,"
    " vs framing bound (informative)"
)
VALUE_FLOOR = (
    "SSE parser: decode + split into values + one event each, no checks,"
    " vs framing bound (informative)"
)
TARGETS = {
    CUMULATIVE: Target(1.5),
    SMALL: Target(3.0),
    MULTILINE: Target(2.5),
    BOUND: Target(0.2),
}

READS = (4 * 1024, 16 * 1024, 64 * 1024)
SIZES = (1024, 8 * 1024, 64 * 1024)
CHARS = (1, 4, 32)


def _rates(chunks: list[bytes], runners: dict[str, Runner], rounds: int) -> dict[str, Sample]:
    """Events per CPU second of each runner, rounds interleaved between them.

    CPU time of this thread, not wall time: the machine is shared, and time
    spent descheduled is nobody's parsing."""
    counts = {name: runner(chunks) for name, runner in runners.items()}  # warm-up
    values: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            gc.collect()
            started = time.thread_time()
            runner(chunks)
            took = max(time.thread_time() - started, 1e-9)
            values[name].append(counts[name] / took)
    return {name: sample(found) for name, found in values.items()}


def _judged(measure: str, workload: str, rates: dict[str, Sample], peer: str) -> Row:
    ours, other = rates["gptalk-proto"], rates[peer]
    return row(
        measure,
        workload,
        ours.show("M ev/s", 1e-6),
        other.show("M ev/s", 1e-6),
        ours.median / other.median,
        TARGETS[measure],
    )


def parse_rows(rounds: int, quick: bool) -> list[Row]:
    """Every cell of the parse matrix: JSON style x reply size x characters per
    event x read size x line ends for cumulative events; style x characters x
    reads x ends for small deltas; style x reads x ends for multi-line events.
    ``quick`` keeps 16 KiB reads, 8 KB replies and 4 characters per event."""
    reads = (16 * 1024,) if quick else READS
    sizes = (8 * 1024,) if quick else SIZES
    chars = (4,) if quick else CHARS
    budget = workloads.MAX_PARSE_STREAM // (4 if quick else 1)
    pair: dict[str, Runner] = {"gptalk-proto": ours, "httpx-sse": httpx_sse}
    rows: list[Row] = []
    for style in workloads.STYLES:
        for ends in workloads.ENDS:
            for size in sizes:
                for per_event in chars:
                    events = size // per_event
                    stream = workloads.gptalk_stream(size, events, style, ends, budget)
                    kept = stream.count(b"data: ") - 1
                    window = "" if kept >= events else f", last {kept} events"
                    # A short stream is parsed several times over (one stream
                    # after the other, as on a connection that carries many),
                    # so that each timing is of about the budget's bytes.
                    times = max(1, budget // len(stream))
                    stream *= times
                    window += f", x{times}" if times > 1 else ""
                    for read in reads:
                        rates = _rates(workloads.chunked(stream, read), pair, rounds)
                        name = (
                            f"{size // 1024} KB reply, {per_event} ch/event{window}, "
                            f"{style}, {ends}, {read // 1024} KiB reads"
                        )
                        rows.append(_judged(CUMULATIVE, name, rates, "httpx-sse"))
            for per_event in chars:
                count = 20_000 if quick else 100_000
                stream = workloads.small_deltas(count, per_event, style, ends)
                for read in reads:
                    runners = {
                        **pair,
                        "framing bound": framing_bound,
                        FLOOR: event_floor,
                        LIST_FLOOR: event_list_floor,
                        VALUE_FLOOR: value_floor,
                    }
                    rates = _rates(workloads.chunked(stream, read), runners, rounds)
                    name = f"{per_event} ch/event, {style}, {ends}, {read // 1024} KiB reads"
                    rows.append(_judged(SMALL, name, rates, "httpx-sse"))
                    rows.append(_judged(BOUND, name, rates, "framing bound"))
                    bound = rates["framing bound"]
                    for floor_row in (FLOOR, LIST_FLOOR, VALUE_FLOOR):
                        floor = rates[floor_row]
                        rows.append(
                            row(
                                floor_row,
                                name,
                                floor.show("M ev/s", 1e-6),
                                bound.show("M ev/s", 1e-6),
                                floor.median / bound.median,
                                None,
                            )
                        )
            stream = workloads.multiline(5_000 if quick else 25_000, style, ends)
            for read in reads:
                rates = _rates(workloads.chunked(stream, read), pair, rounds)
                name = f"{style}, {ends}, {read // 1024} KiB reads"
                rows.append(_judged(MULTILINE, name, rates, "httpx-sse"))
    return rows
