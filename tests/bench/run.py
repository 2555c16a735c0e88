"""``python -m tests.bench``: measure, side by side in one run, and print ratios.

Every figure is the median of ``--rounds`` rounds (at least 5) with its
min-max spread; every target is a ratio to a peer measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

from . import e2e, parse, workloads

ROOT = Path(__file__).resolve().parents[2]


class Row(NamedTuple):
    measure: str
    workload: str
    ours: str
    peer: str
    ratio: float
    target: str
    passed: bool | None


class Sample(NamedTuple):
    median: float
    low: float
    high: float

    def show(self, unit: str, scale: float = 1.0) -> str:
        return f"{self.median * scale:.3g} {unit} ({self.low * scale:.3g}-{self.high * scale:.3g})"


def sample(values: list[float]) -> Sample:
    return Sample(statistics.median(values), min(values), max(values))


def rounds_of(function: Callable[[], float], rounds: int) -> Sample:
    values = []
    for _ in range(rounds):
        gc.collect()
        values.append(function())
    return sample(values)


# -- parse only ------------------------------------------------------------------------


def parse_rows(rounds: int, quick: bool) -> list[Row]:
    loads = {
        "small delta events, LF": workloads.chunked(
            workloads.small_deltas(50_000 if quick else 200_000)
        ),
        "multi-line events, id + event, CRLF": workloads.chunked(
            workloads.multiline_crlf(15_000 if quick else 50_000)
        ),
        "GPTalk cumulative events (8 KB reply)": workloads.chunked(workloads.gptalk_stream()),
    }
    targets = {
        "small delta events, LF": 2.0,
        "multi-line events, id + event, CRLF": 2.0,
        "GPTalk cumulative events (8 KB reply)": 1.2,
    }
    rows = []
    bound_rate = ours_small = 0.0
    for name, chunks in loads.items():
        rates: dict[str, Sample] = {}
        for parser_name, runner in parse.PARSERS.items():
            try:
                runner(chunks[:2])  # imports and warm-up
            except ImportError:
                continue

            def one(runner: parse.Runner = runner, chunks: list[bytes] = chunks) -> float:
                started = time.perf_counter()
                count = runner(chunks)
                return count / (time.perf_counter() - started)

            rates[parser_name] = rounds_of(one, rounds)
        ours = rates["gptalk-proto"]
        for peer in ("httpx-sse", "sseclient-py", "seed split"):
            if peer not in rates:
                continue
            target = targets[name] if peer == "httpx-sse" else None
            ratio = ours.median / rates[peer].median
            rows.append(
                Row(
                    "SSE parser, parse only",
                    f"{name} vs {peer}",
                    ours.show("M ev/s", 1e-6),
                    rates[peer].show("M ev/s", 1e-6),
                    ratio,
                    f">= {target}" if target else "(report)",
                    ratio >= target if target else None,
                )
            )
        if name.startswith("small"):
            bound_rate, ours_small = rates["framing bound"].median, ours.median
            bound = rates["framing bound"]
    ratio = ours_small / bound_rate
    rows.append(
        Row(
            "SSE parser vs framing bound",
            "small delta events",
            f"{ours_small / 1e6:.3g} M ev/s",
            bound.show("M ev/s", 1e-6),
            ratio,
            ">= 0.1",
            ratio >= 0.1,
        )
    )
    return rows


# -- end to end --------------------------------------------------------------------------


def pin(cpu: int) -> None:
    """Keep this process on one CPU (where the machine lets us choose)."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})


class Server:
    """The benchmark server, on the last CPU; the clients run on the first,
    so the two sides do not take turns on one core."""

    def __init__(self, workloads_: list[str]) -> None:
        cpus = os.cpu_count() or 1
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.server", *workloads_],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: pin(cpus - 1)) if cpus > 1 else None,  # noqa: PLW1509
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.fullmatch(r"listening on (\d+)\n", line)
        if match is None:
            self.close()
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{match.group(1)}"

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()


def expected(workload: str) -> str:
    _, size, count = workload.split(":")
    return "".join(workloads.reply_pieces(int(size), int(count)))


def make_clients(url: str) -> list[Any]:
    clients: list[Any] = [e2e.Ours(url)]
    for maker in (e2e.Seed, e2e.HttpxSSE):
        try:
            clients.append(maker(url))
        except ImportError:
            print(f"(skipped {maker.name}: pip install -e '.[bench]')", file=sys.stderr)
    return clients


async def timed_chats(client: Any, workload: str, chats: int) -> float:
    """Seconds per chat, over ``chats`` chats (each checked)."""
    want = expected(workload)
    started = time.perf_counter()
    for _ in range(chats):
        text = await e2e.whole_reply(client, workload)
        if text != want:
            raise AssertionError(f"{client.name} got a wrong reply for {workload}")
    return (time.perf_counter() - started) / chats


async def concurrent_chats(client: Any, workload: str, count: int) -> float:
    want = expected(workload)
    started = time.perf_counter()
    texts = await asyncio.gather(*(e2e.whole_reply(client, workload) for _ in range(count)))
    took = time.perf_counter() - started
    if any(text != want for text in texts):
        raise AssertionError(f"{client.name} got a wrong reply under concurrency")
    return took


def e2e_rows(rounds: int, quick: bool) -> list[Row]:
    small = "events:8192:2000"
    large = "events:16384:4000" if quick else "events:65536:16000"
    many = "events:2000:500"
    single = "events:16:1"
    server = Server([small, large, many, single, "idle"])
    rows: list[Row] = []
    try:

        async def measure() -> None:
            clients = make_clients(server.url)
            try:
                for client in clients:  # warm up: logins, connections, imports
                    await timed_chats(client, small, 1)
                plan: list[tuple[str, str, Callable[[Any], Awaitable[float]], float, str]] = [
                    (
                        "client end to end, loopback, 1 HTTP chunk per event",
                        "GPTalk reply of 8 KB in 2,000 events",
                        lambda c: timed_chats(c, small, 3),
                        1.5,
                        "faster",
                    ),
                    (
                        "client end to end, loopback",
                        f"GPTalk reply of {large.split(':')[1]} chars "
                        f"({_stream_mb(large):.0f} MB of stream)",
                        lambda c: timed_chats(c, large, 1),
                        3.0,
                        "faster",
                    ),
                    (
                        "time to first delta, kept-alive connection",
                        "1 event",
                        lambda c: _median_first_delta(c, single),
                        1.0,
                        "at most",
                    ),
                    (
                        "100 concurrent chats, 1 HTTP chunk per event",
                        "replies of 500 events each",
                        lambda c: concurrent_chats(c, many, 100),
                        1.3,
                        "faster",
                    ),
                ]
                for measure_name, workload_name, run, target, sense in plan:
                    # Rounds alternate between the clients, so the machine's
                    # drift over time falls on all of them alike.
                    values: dict[str, list[float]] = {client.name: [] for client in clients}
                    for _ in range(rounds):
                        for client in clients:
                            gc.collect()
                            values[client.name].append(await run(client))
                    results = {name: sample(found) for name, found in values.items()}
                    ours = results["gptalk-proto"]
                    for peer_name, peer in results.items():
                        if peer_name == "gptalk-proto":
                            continue
                        primary = peer_name == "seed aiohttp"
                        if sense == "faster":
                            ratio = peer.median / ours.median
                            verdict = ratio >= target if primary else None
                            shown = f">= {target}" if primary else "(report)"
                        else:
                            ratio = ours.median / peer.median
                            verdict = ratio <= target if primary else None
                            shown = f"<= {target}" if primary else "(report)"
                        rows.append(
                            Row(
                                measure_name,
                                f"{workload_name} vs {peer_name}",
                                ours.show("ms", 1e3),
                                peer.show("ms", 1e3),
                                ratio,
                                shown,
                                verdict,
                            )
                        )
                rows.append(await _idle_memory(server.url))
            finally:
                for client in clients:
                    await client.aclose()

        asyncio.run(measure())
    finally:
        server.close()
    return rows


def _stream_mb(workload: str) -> float:
    _, size, count = workload.split(":")
    return sum(len(e) for e in workloads.gptalk_events(int(size), int(count))) / 1e6


async def _median_first_delta(client: Any, workload: str) -> float:
    values = [await e2e.first_delta(client, workload) for _ in range(200)]
    return statistics.median(values)


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


async def _idle_memory(url: str, streams: int = 1000) -> Row:
    """1,000 open streams waiting for their next event: memory per stream."""
    client = e2e.Ours(url)
    started = asyncio.Event()
    opened = 0

    async def hold() -> None:
        nonlocal opened
        async for _ in client.deltas("idle"):
            opened += 1
            if opened == streams:
                started.set()

    gc.collect()
    before = _rss()
    tasks = [asyncio.ensure_future(hold()) for _ in range(streams)]
    await asyncio.wait_for(started.wait(), 60)
    gc.collect()
    per_stream = (_rss() - before) / streams
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.aclose()
    return Row(
        "memory per idle open stream",
        f"{streams:,} streams",
        f"{per_stream / 1024:.1f} KiB",
        "-",
        per_stream / 1024,
        "<= 64 KiB",
        per_stream <= 64 * 1024,
    )


# -- replay -------------------------------------------------------------------------------


def replay_row(rounds: int) -> Row:
    from gptalk_transports._cassettes import load_cassette
    from gptalk_transports._session import replay_session

    cassette = load_cassette(ROOT / "cassettes" / "long-reply.json")
    stream_bytes = sum(
        len(chunk.data)
        for item in cassette.interactions
        if item.kind == "stream"
        for chunk in item.response.chunks
    )

    async def measure() -> list[float]:
        # One event loop for all rounds: starting a loop is not the client's
        # work.  Each round builds its own client and replays the cassette.
        await replay_session(cassette)  # warm-up
        speeds = []
        for _ in range(max(rounds, 5)):
            gc.collect()
            started = time.perf_counter()
            results = await replay_session(cassette)
            took = time.perf_counter() - started
            assert results
            assert results[0].error is None
            speeds.append(stream_bytes / took)
        return speeds

    speed = sample(asyncio.run(measure()))
    return Row(
        "cassette replay, instant",
        f"the {stream_bytes // 1000} KB shipped cassette, whole client",
        speed.show("MB/s", 1e-6),
        "-",
        speed.median / 1e6,
        ">= 100 MB/s",
        speed.median >= 100e6,
    )


# -- report ---------------------------------------------------------------------------------


HEADER = ("measure", "workload", "ours (median, min-max)", "peer", "ratio", "target", "")


def _cells(rows: list[Row]) -> list[tuple[str, ...]]:
    return [
        (
            r.measure,
            r.workload,
            r.ours,
            r.peer,
            f"{r.ratio:.2f}",
            r.target,
            {True: "PASS", False: "FAIL", None: ""}[r.passed],
        )
        for r in rows
    ]


def render_markdown(rows: list[Row]) -> str:
    """The table as Markdown (for the README)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells) + " |" for cells in _cells(rows)]
    return "\n".join(lines)


def render(rows: list[Row]) -> str:
    header = HEADER
    table = [header, *_cells(rows)]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    out = []
    for number, line in enumerate(table):
        out.append(
            " | ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        )
        if number == 0:
            out.append("-+-".join("-" * width for width in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per figure (>= 5)")
    parser.add_argument("--quick", action="store_true", help="smaller workloads (a smoke run)")
    parser.add_argument(
        "--only",
        choices=["parse", "e2e", "replay", "any-client"],
        action="append",
        help="just these parts",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    pin(0)
    rounds = max(args.rounds, 5) if not args.quick else max(args.rounds, 2)
    parts = args.only or ["parse", "e2e", "replay", "any-client"]
    rows: list[Row] = []
    if "parse" in parts:
        rows += parse_rows(rounds, args.quick)
    if "e2e" in parts:
        rows += e2e_rows(rounds, args.quick)
    if "replay" in parts:
        rows.append(replay_row(rounds))
    if "any-client" in parts:
        from .any_client import any_client_rows

        rows += any_client_rows(rounds, args.quick)
    print(render_markdown(rows) if args.markdown else render(rows))
    failed = [row for row in rows if row.passed is False]
    print(f"\n{len(rows)} rows, {sum(r.passed is True for r in rows)} pass, {len(failed)} fail")
    return 1 if failed else 0
