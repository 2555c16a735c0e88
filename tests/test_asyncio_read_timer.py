"""The native asyncio backend's read timeout: one timer kept across reads.

Each wait must still fail exactly ``timeout`` seconds after it began, however
the waits before it armed the kept timer (longer, shorter, or no timeout).
Also its write errors, mapped only on the failing path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import cast

import pytest

from gptalk_transports import WriteError
from gptalk_transports._backends.asyncio import AsyncioBackend, AsyncioStream, _Protocol

#: The loop runs a timer up to its clock's resolution early; a little slack.
EARLY = 0.005

Scenario = Callable[[AsyncioStream, asyncio.StreamWriter], Awaitable[None]]


def run_with_peer(scenario: Scenario) -> None:
    """Run ``scenario`` with a stream to a local server and the server's writer."""

    async def main() -> None:
        accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

        async def on_client(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await accepted.put(writer)

        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port)
        assert isinstance(stream, AsyncioStream)
        peer = await accepted.get()
        try:
            await scenario(stream, peer)
        finally:
            await stream.aclose()
            peer.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


async def timed_read(stream: AsyncioStream, timeout: float | None) -> tuple[bytes | None, float]:
    """What the read gave (None: it timed out), and how long it took (loop time)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        data: bytes | None = await stream.receive_some(1024, timeout)
    except TimeoutError:
        data = None
    return data, loop.time() - started


def timer_of(stream: AsyncioStream) -> asyncio.TimerHandle | None:
    """The read timer the stream keeps armed, if any."""
    return stream._protocol.read_timer


def send_later(peer: asyncio.StreamWriter, delay: float, data: bytes) -> None:
    asyncio.get_running_loop().call_later(delay, peer.write, data)


def test_a_silent_peer_times_the_read_out_after_its_timeout() -> None:
    async def scenario(stream: AsyncioStream, peer: asyncio.StreamWriter) -> None:
        data, took = await timed_read(stream, 0.05)
        assert data is None
        assert 0.05 - EARLY <= took < 2

    run_with_peer(scenario)


def test_a_later_wait_gets_its_whole_timeout_not_the_kept_timers() -> None:
    # The first wait arms the timer for 0.2 s; the second starts later with
    # 0.3 s: it must not fail when the first wait's timer fires.
    async def scenario(stream: AsyncioStream, peer: asyncio.StreamWriter) -> None:
        send_later(peer, 0.05, b"first")
        assert (await timed_read(stream, 0.2))[0] == b"first"
        data, took = await timed_read(stream, 0.3)
        assert data is None
        assert 0.3 - EARLY <= took < 2

    run_with_peer(scenario)


def test_a_shorter_timeout_after_a_longer_one_fails_on_time() -> None:
    async def scenario(stream: AsyncioStream, peer: asyncio.StreamWriter) -> None:
        send_later(peer, 0.01, b"first")
        assert (await timed_read(stream, 30.0))[0] == b"first"
        data, took = await timed_read(stream, 0.05)
        assert data is None
        assert 0.05 - EARLY <= took < 2

    run_with_peer(scenario)


def test_a_wait_without_a_timeout_outlives_the_kept_timer() -> None:
    async def scenario(stream: AsyncioStream, peer: asyncio.StreamWriter) -> None:
        send_later(peer, 0.01, b"first")
        assert (await timed_read(stream, 0.05))[0] == b"first"
        # The timer armed above fires during this wait, which has no timeout.
        send_later(peer, 0.2, b"second")
        data, took = await timed_read(stream, None)
        assert data == b"second"
        assert took >= 0.2 - EARLY

    run_with_peer(scenario)


@pytest.mark.parametrize("rounds", [1, 5])
def test_reads_that_find_data_in_time_never_time_out(rounds: int) -> None:
    # Many short waits under one kept timer, each ending before its timeout,
    # and past the first one's deadline: none fails.
    async def scenario(stream: AsyncioStream, peer: asyncio.StreamWriter) -> None:
        for i in range(rounds):
            send_later(peer, 0.03, b"%d" % i)
            data, _ = await timed_read(stream, 0.1)
            assert data == b"%d" % i

    run_with_peer(scenario)


def test_the_timer_disarms_itself_when_no_read_waits_and_on_close() -> None:
    async def scenario(stream: AsyncioStream, peer: asyncio.StreamWriter) -> None:
        send_later(peer, 0.01, b"first")
        assert (await timed_read(stream, 0.05))[0] == b"first"
        assert timer_of(stream) is not None  # kept for the next wait
        await asyncio.sleep(0.1)  # it fires with no wait in progress
        assert timer_of(stream) is None
        # The next wait arms a fresh one, and still times out on time.
        data, took = await timed_read(stream, 0.05)
        assert data is None
        assert took >= 0.05 - EARLY
        send_later(peer, 0.0, b"x")
        assert (await timed_read(stream, 10.0))[0] == b"x"
        assert timer_of(stream) is not None
        await stream.aclose()
        assert timer_of(stream) is None  # closed: nothing left on the loop

    run_with_peer(scenario)


class _FailingTransport:
    """A transport whose write raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionResetError("reset"), WriteError),
        (RuntimeError("transport closed"), WriteError),
        (TimeoutError(), TimeoutError),  # an OSError, but a timeout: passes through
        (ValueError("not ours"), ValueError),  # not mapped: as it was
    ],
)
def test_a_failed_write_is_mapped_as_every_backend_maps_it(
    error: BaseException, expected: type[BaseException]
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        transport = cast(asyncio.Transport, _FailingTransport(error))
        stream = AsyncioStream(transport, _Protocol(loop), "peer:1", None)
        with pytest.raises(expected) as caught:
            await stream.send_all(b"x", 1.0)
        if expected is WriteError:
            assert str(caught.value) == f"the connection to peer:1 broke while writing: {error}"
            assert caught.value.__cause__ is None
            assert caught.value.__suppress_context__

    asyncio.run(main())
