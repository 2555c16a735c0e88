"""Adversarial sequences for the asyncio backend's one kept read timer.

Cancelled waits, a peer closing during a wait, a pooled connection whose
timer fired while nothing read, and many connections at once: each wait
still fails exactly ``timeout`` seconds after it began (never early, never
not at all).  Generous upper bounds: only "it did fail" matters there.
"""

from __future__ import annotations

import asyncio
import contextlib

from gptalk_transports._backends.asyncio import AsyncioBackend, AsyncioStream

from .test_asyncio_read_timer import EARLY, run_with_peer, send_later, timed_read, timer_of


async def _cancelled_wait(stream: AsyncioStream, timeout: float) -> None:
    task = asyncio.ensure_future(stream.receive_some(1024, timeout))
    for _ in range(3):  # the task starts its wait (a few loop turns)
        await asyncio.sleep(0)
    assert stream._protocol.reader is not None
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert stream._protocol.reader is None


def test_a_cancelled_wait_then_a_longer_one() -> None:
    # The cancelled wait armed the timer for 0.05 s; the next wait's 0.3 s
    # must not end when it fires.
    async def scenario(stream: AsyncioStream, peer: asyncio.StreamWriter) -> None:
        await _cancelled_wait(stream, 0.05)
        data, took = await timed_read(stream, 0.3)
        assert data is None
        assert 0.3 - EARLY <= took < 5

    run_with_peer(scenario)


def test_a_cancelled_wait_then_a_shorter_one() -> None:
    async def scenario(stream: AsyncioStream, peer: asyncio.StreamWriter) -> None:
        await _cancelled_wait(stream, 30.0)
        data, took = await timed_read(stream, 0.05)
        assert data is None
        assert 0.05 - EARLY <= took < 5

    run_with_peer(scenario)


def test_a_cancelled_wait_then_one_without_a_timeout() -> None:
    async def scenario(stream: AsyncioStream, peer: asyncio.StreamWriter) -> None:
        await _cancelled_wait(stream, 0.02)
        send_later(peer, 0.2, b"late")
        data, took = await timed_read(stream, None)
        assert data == b"late"
        assert took >= 0.2 - EARLY

    run_with_peer(scenario)


def test_the_peer_closing_during_a_wait_ends_it() -> None:
    async def scenario(stream: AsyncioStream, peer: asyncio.StreamWriter) -> None:
        asyncio.get_running_loop().call_later(0.02, peer.close)
        data, took = await timed_read(stream, 30.0)
        assert data == b""
        assert took < 5
        # Every read from now on returns at once (the kept timer, if still
        # armed, finds no wait when it fires); closing disarms it.
        for _ in range(3):
            data, took = await timed_read(stream, 0.01)
            assert data == b""
        await stream.aclose()
        assert timer_of(stream) is None

    run_with_peer(scenario)


def test_a_pooled_connection_whose_timer_fired_idle() -> None:
    # A read ends in time; the connection then sits idle (pooled) until its
    # kept timer fired with no wait; reused, its reads still time out on
    # time, and find data in time.
    async def scenario(stream: AsyncioStream, peer: asyncio.StreamWriter) -> None:
        send_later(peer, 0.01, b"first")
        assert (await timed_read(stream, 0.05))[0] == b"first"
        for _ in range(1000):  # the timer fires, with no wait (bounded)
            if timer_of(stream) is None:
                break
            await asyncio.sleep(0.01)
        assert timer_of(stream) is None
        data, took = await timed_read(stream, 0.05)
        assert data is None
        assert 0.05 - EARLY <= took < 5
        send_later(peer, 0.01, b"again")
        assert (await timed_read(stream, 1.0))[0] == b"again"

    run_with_peer(scenario)


def test_a_wait_woken_by_data_that_a_timer_already_failed() -> None:
    # Zero and negative timeouts: the wait fails at once (no hang), and the
    # connection's next read still finds the data sent meanwhile.
    async def scenario(stream: AsyncioStream, peer: asyncio.StreamWriter) -> None:
        for timeout in (0.0, -1.0):
            data, took = await timed_read(stream, timeout)
            assert data is None
            assert took < 5
        peer.write(b"x")
        assert (await timed_read(stream, 1.0))[0] == b"x"

    run_with_peer(scenario)


def test_many_connections_each_with_its_own_timeout() -> None:
    # 20 connections at once, timeouts 0.05 to 0.24 s, half of them fed in
    # time: each silent one fails after its own timeout, none of the others.
    async def main() -> None:
        accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

        async def on_client(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accepted.put(writer)

        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        streams: list[AsyncioStream] = []
        peers: list[asyncio.StreamWriter] = []
        for _ in range(20):
            stream = await AsyncioBackend().connect_tcp("127.0.0.1", port)
            assert isinstance(stream, AsyncioStream)
            streams.append(stream)
            peers.append(await accepted.get())
        try:
            timeouts = [0.05 + 0.01 * i for i in range(20)]
            for i, peer in enumerate(peers):
                if i % 2:
                    send_later(peer, 0.01, b"%d" % i)
            results = await asyncio.gather(
                *(timed_read(s, t) for s, t in zip(streams, timeouts, strict=True))
            )
            for i, ((data, took), timeout) in enumerate(zip(results, timeouts, strict=True)):
                if i % 2:
                    assert data == b"%d" % i
                else:
                    assert data is None
                    assert timeout - EARLY <= took < 5
        finally:
            for stream in streams:
                await stream.aclose()
            for peer in peers:
                peer.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())
