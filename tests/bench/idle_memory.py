"""Memory per idle open stream, in a process of its own.

Run as ``python -m tests.bench.idle_memory URL STREAMS``: it opens STREAMS
chats of the benchmark server's ``idle`` workload (one event, then silence)
with our client, and prints the growth of its resident memory, in bytes per
stream, once every stream holds its first event.

Why a process of its own: measured inside the benchmark's process, after
the cells of large replies, the allocator could hand their freed memory
back to the system while the streams opened, and one run measured
-7.8 KiB a stream.  Here nothing ran before but imports and one stream.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import sys

from . import e2e


def rss() -> int:
    """This process's resident memory, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


async def per_stream(url: str, streams: int) -> float:
    """Bytes of resident memory per open stream (see the module)."""
    client = e2e.Ours(url)
    try:
        # One stream first, ended: what the first chat builds once (the
        # connection pool, caches) is not each stream's.
        first = client.deltas("idle")
        await anext(first)
        await first.aclose()
        started = asyncio.Event()
        opened = 0

        async def hold() -> None:
            nonlocal opened
            async for _ in client.deltas("idle"):
                opened += 1
                if opened == streams:
                    started.set()

        gc.collect()
        before = rss()
        tasks = [asyncio.ensure_future(hold()) for _ in range(streams)]
        try:
            await asyncio.wait_for(started.wait(), 60)
            gc.collect()
            grown = rss() - before
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await client.aclose()
    if grown <= 0:
        # Not a measure: something else gave memory back meanwhile.
        raise RuntimeError(f"resident memory grew by {grown} bytes with {streams} streams open")
    return grown / streams


def main() -> None:
    url, streams = sys.argv[1], int(sys.argv[2])
    print(asyncio.run(per_stream(url, streams)))


if __name__ == "__main__":
    main()
