"""The benchmark's parse runners count the same events on the same bytes,
and its clients make the same exchanges: a floor or a peer that skipped work
would make its row a lie."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator

import pytest

from .bench import e2e, run, workloads
from .bench import server as bench_server
from .bench.parse import (
    event_floor,
    event_list_floor,
    framing_bound,
    httpx_sse,
    ours,
    value_floor,
)
from .bench.run import expected, name_of

pytest.importorskip("httpx_sse")


@pytest.mark.parametrize("read", [4 * 1024, 64 * 1024])
@pytest.mark.parametrize("ends", workloads.ENDS)
@pytest.mark.parametrize("style", workloads.STYLES)
@pytest.mark.parametrize("per_event", [1, 32])
def test_small_delta_runners_count_every_event(
    per_event: int, style: str, ends: str, read: int
) -> None:
    chunks = workloads.chunked(workloads.small_deltas(2_000, per_event, style, ends), read)
    runners = (ours, httpx_sse, framing_bound, event_floor, event_list_floor, value_floor)
    assert [runner(chunks) for runner in runners] == [2_000] * len(runners)


def test_every_client_logs_in_once_per_five_chats() -> None:
    """The end-to-end rows compare clients doing the same exchanges: each
    client, ours and the peers, logs in once per 5 chats, one chat at a time
    and 20 at once (the seed's own count let concurrent chats share one
    token past its 5 uses; see ``TokenUses``)."""
    pytest.importorskip("aiohttp")
    paths: collections.Counter[bytes] = collections.Counter()

    class Counting(bench_server.BenchProtocol):
        def respond(self) -> None:
            paths[self.target.split(b"?")[0].rsplit(b"/", 1)[1]] += 1
            super().respond()

    workload = name_of(64, 8, "raw", "lf")

    async def main() -> dict[str, list[dict[bytes, int]]]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Counting, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        seen: dict[str, list[dict[bytes, int]]] = {}
        try:
            for client in (e2e.Ours(url), e2e.Seed(url), e2e.HttpxSSE(url)):
                try:
                    counts = []
                    for _ in range(7):
                        assert await e2e.whole_reply(client, workload) == expected(workload)
                    counts.append(dict(paths))
                    paths.clear()
                    replies = await asyncio.gather(
                        *(e2e.whole_reply(client, workload) for _ in range(20))
                    )
                    assert replies == [expected(workload)] * 20
                    counts.append(dict(paths))
                    paths.clear()
                    seen[client.name] = counts
                finally:
                    await client.aclose()
        finally:
            server.close()
            await server.wait_closed()
        return seen

    seen = asyncio.run(main())
    # 7 chats: a login, 5 chats, a login, 2 chats.  Then 20 at once: 3 uses
    # of the second token are left, and the other 17 chats need 4 logins.
    for name, (one_by_one, at_once) in seen.items():
        assert one_by_one == {b"login": 2, b"text": 7, b"stream": 7}, name
        assert at_once == {b"login": 4, b"text": 20, b"stream": 20}, name


@pytest.mark.parametrize("warm_up", [True, False])
def test_cpu_per_chat_counts_its_chats_after_the_warm_up(
    monkeypatch: pytest.MonkeyPatch, warm_up: bool
) -> None:
    # A client whose first chat of a turn costs 10 units and every next one
    # 1 (the process's clock is the client's count): the warm-up chat is
    # made, and checked, but not counted; without it, it is.
    workload = name_of(64, 8, "raw", "lf")
    clock = [0.0]
    chats = [0]

    class Client:
        name = "counted"

        async def deltas(self, prompt: str) -> AsyncIterator[str]:
            clock[0] += 10.0 if chats[0] == 0 else 1.0
            chats[0] += 1
            yield expected(prompt)

    monkeypatch.setattr(time, "process_time", lambda: clock[0])
    took = asyncio.run(run.cpu_per_chat(Client(), workload, 3, warm_up=warm_up))
    assert chats[0] == (4 if warm_up else 3)
    assert took == (1.0 if warm_up else 12.0 / 3)
