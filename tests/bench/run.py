"""``python -m tests.bench``: measure, side by side in one run, and print ratios.

Every measure runs over a matrix of workloads (JSON style, reply size,
characters per event, read size, line ends; see :mod:`tests.bench.parse` and
:func:`_plans`) and every cell is printed; a target holds when it holds on the
measure's WORST cell, which the last table shows.  Every figure is the median
of ``--rounds`` rounds (at least 5) with its min-max spread, rounds interleaved
between the sides; every target is a ratio to a peer measured in the same run.
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

from . import common, e2e, parse, workloads
from .common import Row, sample

ROOT = Path(__file__).resolve().parents[2]


# -- end to end --------------------------------------------------------------------------


def pin(cpu: int) -> None:
    """Keep this process on one CPU (where the machine lets us choose)."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})


def unpin() -> None:
    """Let this process run on any CPU (a child inherits its parent's pin:
    this undoes it, in the child)."""
    if hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, range(os.cpu_count() or 1))


#: The event loops the run's benchmark servers ran on (printed with the rows).
SERVER_LOOPS: set[str] = set()


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
        match = re.fullmatch(r"listening on (\d+) \((\w+)\)\n", line)
        if match is None:
            self.close()
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{match.group(1)}"
        #: The event loop it runs on (see server.loop_name).
        self.loop = match.group(2)
        SERVER_LOOPS.add(self.loop)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()


def expected(workload: str) -> str:
    _, size, count, _style, _ends = workload.split(":")
    return "".join(workloads.reply_pieces(int(size), int(count)))


def name_of(size: int, count: int, style: str, ends: str) -> str:
    """The workload the benchmark server serves for this cell."""
    return f"events:{size}:{count}:{style}:{ends}"


def make_clients(url: str, peers: tuple[str, ...]) -> list[Any]:
    clients: list[Any] = [e2e.Ours(url)]
    for maker in (e2e.Seed, e2e.HttpxSSE):
        if maker.name not in peers:
            continue
        try:
            clients.append(maker(url))
        except ImportError:
            print(f"(skipped {maker.name}: pip install -e '.[bench]')", file=sys.stderr)
    return clients


async def cpu_per_chat(client: Any, workload: str, chats: int, *, warm_up: bool) -> float:
    """CPU seconds of this process per chat, over ``chats`` chats (each
    checked).  The server runs in its own process: what is counted is the
    client's work alone, and time spent descheduled on a busy machine is not.

    ``warm_up``: one chat first, not counted.  The clients take turns in this
    process, and the first chat of a turn runs with the caches and branch
    predictors the other clients left.  On the 8 KB reply at 32 characters an
    event (ASCII, CRLF) that chat cost ours 0.8 ms more than the next ones (2.05
    against 1.3 ms), and the seed aiohttp client 1.0 ms more (4.5 against
    3.6): the alternation's cost, about the same for both, which a client
    chatting alone pays once.  Counted in a turn of three chats it pulled
    that cell's ratio from 2.7 (ten chats a turn) to 2.4.  A turn of one
    64 KB chat (tens of ms, and a second for the seed at 4 characters an
    event) hardly feels it."""
    want = expected(workload)
    if warm_up and await e2e.whole_reply(client, workload) != want:
        raise AssertionError(f"{client.name} got a wrong reply for {workload}")
    started = time.process_time()
    for _ in range(chats):
        text = await e2e.whole_reply(client, workload)
        if text != want:
            raise AssertionError(f"{client.name} got a wrong reply for {workload}")
    return (time.process_time() - started) / chats


async def concurrent_chats(client: Any, workload: str, count: int) -> float:
    want = expected(workload)
    started = time.perf_counter()
    texts = await asyncio.gather(*(e2e.whole_reply(client, workload) for _ in range(count)))
    took = time.perf_counter() - started
    if any(text != want for text in texts):
        raise AssertionError(f"{client.name} got a wrong reply under concurrency")
    return took


#: Chats behind each time-to-first-delta figure (their median).
FIRST_DELTA_CHATS = 100


async def _median_first_delta(client: Any, workload: str) -> float:
    values = [await e2e.first_delta(client, workload) for _ in range(FIRST_DELTA_CHATS)]
    return statistics.median(values)


E2E_SMALL = "client end to end, 8 KB reply (client CPU per chat)"
E2E_LARGE = "client end to end, 64 KB reply (client CPU per chat)"
FIRST = "time to first delta, kept-alive connection (wall)"
CONCURRENT = "100 concurrent chats (wall)"
MEMORY = "memory per idle open stream"


class Plan(NamedTuple):
    measure: str
    cells: list[tuple[str, str]]  # (label, server workload)
    run: Callable[[Any, str], Awaitable[float]]
    target: common.Target
    peers: tuple[str, ...]
    unit: str
    #: Whether the row's label shows the benchmark server's CPU for each
    #: client (where the server could set the pace, not the client).
    server_cpu: bool = False


def _plans(quick: bool) -> list[Plan]:
    """The end-to-end matrix.  The server flushes one HTTP chunk per event, so
    the read sizes are the kernel's; the other dimensions are sampled where the
    full product would take too long (said in each label)."""
    styles, ends_ = workloads.STYLES, workloads.ENDS
    chars = (4,) if quick else (1, 4, 32)
    large = 16 * 1024 if quick else 64 * 1024
    # 64 KB at 1 character per event is 2 GB of stream per chat: sampled out.
    large_chars = (4,) if quick else (4, 32)
    concurrent_size = 2000

    def cells(
        size: int, per_event: tuple[int, ...], ends: tuple[str, ...]
    ) -> list[tuple[str, str]]:
        return [
            (
                (f"{size // 1024} KB" if size % 1024 == 0 else f"{size:,} chars")
                + f", {c} ch/event, {s}, {e}",
                name_of(size, max(size // c, 1), s, e),
            )
            for s in styles
            for e in ends
            for c in per_event
        ]

    seed, both = ("seed aiohttp",), ("seed aiohttp", "httpx + httpx-sse")
    return [
        Plan(
            E2E_SMALL,
            cells(8 * 1024, chars, ends_),
            lambda c, w: cpu_per_chat(c, w, 3, warm_up=True),
            common.Target(2.5),
            both,
            "ms CPU",
        ),
        Plan(
            E2E_LARGE if not quick else E2E_LARGE.replace("64 KB", "16 KB"),
            cells(large, large_chars, ends_),
            lambda c, w: cpu_per_chat(c, w, 1, warm_up=False),
            common.Target(4.0),
            seed,
            "ms CPU",
        ),
        Plan(
            FIRST,
            [(f"1 event, {s}, {e}", name_of(16, 1, s, e)) for s in styles for e in ends_],
            _median_first_delta,
            common.Target(0.8, at_most=True),
            both,
            "ms",
        ),
        Plan(
            CONCURRENT,
            # LF for every style and size of event; CRLF sampled at 4.
            cells(concurrent_size, chars, ("lf",))
            + ([] if quick else cells(concurrent_size, (4,), ("crlf",))),
            lambda c, w: concurrent_chats(c, w, 100),
            common.Target(2.0),
            seed,
            "ms",
            server_cpu=True,
        ),
    ]


def e2e_rows(rounds: int, quick: bool) -> list[Row]:
    plans = _plans(quick)
    server = Server(["idle"])
    rows: list[Row] = []
    try:

        async def measure() -> None:
            clients = make_clients(server.url, ("seed aiohttp", "httpx + httpx-sse"))
            try:
                for plan in plans:
                    used = [c for c in clients if c.name == "gptalk-proto" or c.name in plan.peers]
                    for label, workload in plan.cells:
                        # The first chat of a cell builds its stream in the
                        # server, and warms each client up: not counted.
                        for client in used:
                            await e2e.whole_reply(client, workload)
                        # Rounds alternate between the clients, so the
                        # machine's drift over time falls on all of them alike.
                        values: dict[str, list[float]] = {c.name: [] for c in used}
                        server_cpu: dict[str, list[float]] = {c.name: [] for c in used}
                        for _ in range(rounds):
                            for client in used:
                                gc.collect()
                                before = common.process_cpu(server.process.pid)
                                values[client.name].append(await plan.run(client, workload))
                                after = common.process_cpu(server.process.pid)
                                if before is not None and after is not None:
                                    server_cpu[client.name].append(after - before)
                        results = {name: sample(found) for name, found in values.items()}
                        ours = results["gptalk-proto"]
                        for peer_name, peer in results.items():
                            if peer_name == "gptalk-proto":
                                continue
                            if plan.target.at_most:
                                ratio = ours.median / peer.median
                            else:
                                ratio = peer.median / ours.median
                            note = ""
                            if plan.server_cpu and server_cpu[peer_name]:
                                ours_cpu, peer_cpu = (
                                    statistics.median(server_cpu[name]) * 1e3
                                    for name in ("gptalk-proto", peer_name)
                                )
                                note = f" (server CPU {ours_cpu:.3g} / {peer_cpu:.3g} ms)"
                            rows.append(
                                common.row(
                                    plan.measure,
                                    f"{label} vs {peer_name}{note}",
                                    ours.show(plan.unit, 1e3),
                                    peer.show(plan.unit, 1e3),
                                    ratio,
                                    plan.target if peer_name == "seed aiohttp" else None,
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


async def _idle_memory(url: str, streams: int = 1000) -> Row:
    """1,000 open streams waiting for their next event: memory per stream,
    measured in a process of its own (see tests.bench.idle_memory)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.bench.idle_memory",
        url,
        str(streams),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"the idle-memory process failed ({child.returncode})")
    per_stream = float(out)
    return common.row(
        MEMORY,
        f"{streams:,} streams (raw, lf: one event each, then silence)",
        f"{per_stream / 1024:.1f} KiB",
        "-",
        per_stream / 1024,
        common.Target(16, at_most=True),
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
    return common.row(
        "cassette replay, instant (MB/s)",
        f"the {stream_bytes // 1000} KB shipped cassette, whole client",
        speed.show("MB/s", 1e-6),
        "-",
        speed.median / 1e6,
        common.Target(100),
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
    parser.add_argument(
        "--markdown", action="store_true", help="print the worst cells as Markdown (the README's)"
    )
    args = parser.parse_args(argv)
    pin(0)
    rounds = max(args.rounds, 5) if not args.quick else max(args.rounds, 2)
    parts = args.only or ["parse", "e2e", "replay", "any-client"]
    rows: list[Row] = []
    if "parse" in parts:
        rows += parse.parse_rows(rounds, args.quick)
    if "e2e" in parts:
        rows += e2e_rows(rounds, args.quick)
    if "replay" in parts:
        rows.append(replay_row(rounds))
    if "any-client" in parts:
        from .any_client import any_client_rows

        rows += any_client_rows(rounds, args.quick)
    worst = common.worst(rows)
    if SERVER_LOOPS:
        print(f"The benchmark server's event loop: {', '.join(sorted(SERVER_LOOPS))}.\n")
    print("Every cell:\n")
    print(render(rows))
    print("\nThe worst cell of each measure (a target holds when it holds there):\n")
    print(render_markdown(worst) if args.markdown else render(worst))
    failed = [one for one in worst if one.passed is False]
    judged = sum(one.passed is not None for one in rows)
    print(
        f"\n{len(rows)} rows, {judged} judged cells "
        f"({sum(one.passed is False for one in rows)} below target); "
        f"{len(worst)} measures: {len(worst) - len(failed)} pass, "
        f"{len(failed)} fail on the worst cell"
    )
    return 1 if failed else 0
