"""Replay for any client, measured: the recording proxy against a direct
connection, and the replay server holding many sessions (``--only any-client``)."""

from __future__ import annotations

import asyncio
import gc
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from . import e2e
from .common import process_cpu


async def timed_chats(client: Any, workload: str, chats: int) -> float:
    """Wall seconds per chat, over ``chats`` chats (each reply checked)."""
    from .run import expected

    want = expected(workload)
    started = time.perf_counter()
    for _ in range(chats):
        text = await e2e.whole_reply(client, workload)
        if text != want:
            raise AssertionError(f"{client.name} got a wrong reply for {workload}")
    return (time.perf_counter() - started) / chats


def _proxy_rows(rounds: int, quick: bool) -> list[Any]:
    from .common import Target, row, sample
    from .run import FIRST_DELTA_CHATS, Server, _median_first_delta, name_of, unpin

    single = name_of(16, 1, "raw", "lf")
    # A 64 KB reply in 2,000 cumulative events (64 MB of stream): the proxy
    # records all of it, so the e2e part's 16,000 events would hold GBs.
    large = name_of(16384, 1000, "raw", "lf") if quick else name_of(65536, 2000, "raw", "lf")
    server = Server([single, large])
    rows: list[Any] = []
    # The proxy runs as users run it: `gptalk record --listen`, a process of
    # its own, left to the scheduler (pinned beside the upstream server, it
    # shared that CPU on every hop of a request: 3x the direct time to first
    # delta; the client's CPU is the measured side's).  It would inherit the
    # benchmark's own pin (the client's CPU): unpinned as it starts.
    folder = tempfile.mkdtemp(prefix="gptalk-bench-")
    proxy = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gptalk")),
            "record",
            "--listen",
            "--no-env-proxy",
            "--url",
            server.url,
            "-o",
            str(Path(folder) / "proxied.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=unpin,  # noqa: PLW1509 (only sets the child's CPU affinity)
    )
    try:
        assert proxy.stdout is not None
        line = proxy.stdout.readline()
        match = re.fullmatch(r"listening on (http://\S+)\n", line)
        if match is None:
            raise RuntimeError(f"the recording proxy did not start: {line!r}")
        proxy_url = match.group(1)

        async def measure() -> tuple[dict[str, dict[str, list[float]]], dict[str, list[float]]]:
            direct, through = e2e.Ours(server.url), e2e.Ours(proxy_url)
            values: dict[str, dict[str, list[float]]] = {"first": {}, "large": {}}
            # The proxy's own CPU per chat (informative, not judged).
            cpu: dict[str, list[float]] = {"first": [], "large": []}

            def proxy_cpu(kind: str, before: float | None, chats: int) -> None:
                after = process_cpu(proxy.pid)
                if before is not None and after is not None:
                    cpu[kind].append((after - before) / chats)

            try:
                for client in (direct, through):  # warm up: logins, connections
                    await timed_chats(client, single, 1)
                for _ in range(rounds):
                    # Rounds alternate, so the machine's drift falls on both.
                    for name, client in (("direct", direct), ("proxy", through)):
                        gc.collect()
                        before = process_cpu(proxy.pid)
                        first = await _median_first_delta(client, single)
                        if name == "proxy":
                            proxy_cpu("first", before, FIRST_DELTA_CHATS)
                        values["first"].setdefault(name, []).append(first)
                        gc.collect()
                        before = process_cpu(proxy.pid)
                        took = await timed_chats(client, large, 1)
                        if name == "proxy":
                            proxy_cpu("large", before, 1)
                        values["large"].setdefault(name, []).append(took)
            finally:
                await direct.aclose()
                await through.aclose()
            return values, cpu

        values, cpu = asyncio.run(measure())
    finally:
        # Killed, not stopped: writing and redacting its cassette (each large
        # reply's cumulative events are tens of MB) is not what is measured.
        proxy.kill()
        proxy.wait(timeout=60)
        if proxy.stdout:
            proxy.stdout.close()
        shutil.rmtree(folder, ignore_errors=True)
        server.close()
    first = {name: sample(found) for name, found in values["first"].items()}
    large_t = {name: sample(found) for name, found in values["large"].items()}
    ratio = first["proxy"].median / first["direct"].median
    rows.append(
        row(
            "time to first delta through the recording proxy",
            "1 event, kept-alive connections, vs direct" + _cpu_note(cpu["first"]),
            first["proxy"].show("ms", 1e3),
            first["direct"].show("ms", 1e3),
            ratio,
            Target(1.5, at_most=True),
        )
    )
    size = int(large.split(":")[1]) // 1024
    ratio = large_t["direct"].median / large_t["proxy"].median
    rows.append(
        row(
            "throughput through the recording proxy",
            f"GPTalk reply of {size} KB, vs direct" + _cpu_note(cpu["large"]),
            large_t["proxy"].show("ms", 1e3),
            large_t["direct"].show("ms", 1e3),
            ratio,
            Target(0.7),
        )
    )
    return rows


def _cpu_note(found: list[float]) -> str:
    if not found:
        return ""
    return f" (proxy CPU {statistics.median(found) * 1e3:.3g} ms/chat)"


def _replay_rows(quick: bool) -> list[Any]:
    import gptalk_proto as g
    import gptalk_proto.cassette
    from gptalk_transports import AsyncClient, load_cassette, serve_cassettes_in_thread
    from gptalk_transports._config import Timeout
    from gptalk_transports._session import REPLAY_RETRY, recorded_clock, replay_session

    from .common import Row
    from .run import ROOT

    sessions = 200 if quick else 1000
    cassette = load_cassette(ROOT / "cassettes" / "plain-chat.json")
    prompt = next(
        item.request.json()["content"] for item in cassette.interactions if item.kind == "text"
    )
    [want] = asyncio.run(replay_session(cassette))

    async def one(url: str) -> str:
        async with AsyncClient(
            url,
            retry=REPLAY_RETRY,
            timeout=Timeout(60, 60, 300),
            clock=recorded_clock(cassette),
            trust_env=False,
        ) as client:
            return await client.chat(prompt)

    async def many(url: str) -> list[str]:
        return await asyncio.gather(*(one(url) for _ in range(sessions)))

    server = g.cassette.ReplayServer([cassette], speed=0)
    with serve_cassettes_in_thread([cassette], server=server, check_played=False) as url:
        started = time.perf_counter()
        texts = asyncio.run(many(url))
        took = time.perf_counter() - started
    exact = sum(text == want.text for text in texts)
    rows = [
        Row(  # judged on the count alone: no peer, no ratio target
            "replay server, --speed 0, concurrent sessions",
            f"{sessions:,} clients of plain-chat.json at once ({took:.1f} s)",
            f"{exact:,} exact replies",
            "-",
            exact / sessions,
            "every reply exact",
            exact == sessions and server.sessions == sessions,
        )
    ]
    # Memory per idle session: sessions that logged in and wait for their
    # next request, measured in the core that holds them.
    login = cassette.interactions[0].request
    request = (
        f"{login.method} {login.target} HTTP/1.1\r\n".encode()
        + b"".join(f"{n}: {v}\r\n".encode() for n, v in login.headers)
        + b"\r\n"
        + login.body
    )
    idle = g.cassette.ReplayServer([cassette], speed=0)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(sessions):
        connection = idle.connection()
        connection.receive_data(request)
        connection.close()
    gc.collect()
    per_session = (tracemalloc.get_traced_memory()[0] - before) / sessions
    tracemalloc.stop()
    rows.append(
        Row(
            "replay server, memory per idle session",
            f"{sessions:,} sessions after their login",
            f"{per_session / 1024:.1f} KiB",
            "-",
            per_session / 1024,
            "<= 64 KiB",
            per_session <= 64 * 1024,
        )
    )
    return rows


def any_client_rows(rounds: int, quick: bool) -> list[Any]:
    """The proxy's rows, then the replay server's."""
    return _proxy_rows(rounds, quick) + _replay_rows(quick)
