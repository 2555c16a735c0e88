"""A chat stream read to its end in batches (``_read_to_end``, what a replay
session reads its chats with) gives what iterating it gives: the same values
in the same order, the same text, the same error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from gptalk_proto import GPTalkError
from gptalk_transports import AsyncClient, Timeout
from gptalk_transports._async.client import AsyncChatStream
from gptalk_transports._async.replay import AsyncReplayConnector
from gptalk_transports._session import REPLAY_RETRY, next_chat, recorded_clock, text_steps
from gptalk_transports._sync.client import ChatStream, Client
from gptalk_transports._sync.replay import SyncReplayConnector

from .replay_cases import CASSETTES, cassette_at

# A plain chat, a rewrite, a stream cut mid-event, retries, a long reply.
PATHS = [
    CASSETTES / f"{name}.json"
    for name in ("plain-chat", "rewrite", "cut-mid-event", "503-then-retry", "long-reply")
]

Outcome = tuple[list[Any], str, str | None]


def _error(error: BaseException | None) -> str | None:
    return None if error is None else f"{type(error).__name__}: {error}"


async def _async_outcome(path: Path, mode: str, batched: bool | None) -> Outcome:
    # batched: read with _read_to_end (None: with no callback), else iterated.
    cassette = cassette_at(path)
    prompt, model = next_chat(text_steps(cassette), 0) or ("", "")
    seen: list[Any] = []
    error: BaseException | None = None
    async with AsyncClient(
        cassette.origin,
        connector=AsyncReplayConnector(cassette),
        retry=REPLAY_RETRY,
        timeout=Timeout(None, None, None),
        clock=recorded_clock(cassette),
    ) as client:
        stream: AsyncChatStream = (
            client.events(prompt, model=model)
            if mode == "events"
            else client.stream(prompt, model=model, on_rewrite=mode)  # type: ignore[arg-type]
        )
        async with stream:
            try:
                if batched is None:
                    await stream._read_to_end()
                elif batched:
                    await stream._read_to_end(seen.append)
                else:
                    async for value in stream:
                        seen.append(value)
            except GPTalkError as caught:
                error = caught
            return seen, stream.text, _error(error)


def _sync_outcome(path: Path, mode: str, batched: bool) -> Outcome:
    cassette = cassette_at(path)
    prompt, model = next_chat(text_steps(cassette), 0) or ("", "")
    seen: list[Any] = []
    error: BaseException | None = None
    with Client(
        cassette.origin,
        connector=SyncReplayConnector(cassette),
        retry=REPLAY_RETRY,
        timeout=Timeout(None, None, None),
        clock=recorded_clock(cassette),
    ) as client:
        stream: ChatStream = (
            client.events(prompt, model=model)
            if mode == "events"
            else client.stream(prompt, model=model, on_rewrite=mode)  # type: ignore[arg-type]
        )
        with stream:
            try:
                if batched:
                    stream._read_to_end(seen.append)
                else:
                    for value in stream:
                        seen.append(value)
            except GPTalkError as caught:
                error = caught
            return seen, stream.text, _error(error)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("mode", ["events", "raise", "ignore"])
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_batches_give_what_iteration_gives(path: Path, mode: str, backend: str) -> None:
    iterated = anyio.run(_async_outcome, path, mode, False, backend=backend)
    batched = anyio.run(_async_outcome, path, mode, True, backend=backend)
    assert batched == iterated
    assert iterated[0], "the chat gave something"


@pytest.mark.parametrize("mode", ["events", "raise", "ignore"])
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_blocking_batches_give_what_iteration_gives(path: Path, mode: str) -> None:
    assert _sync_outcome(path, mode, True) == _sync_outcome(path, mode, False)


def test_the_cases_cover_a_rewrite_and_an_error() -> None:
    rewrite = anyio.run(_async_outcome, CASSETTES / "rewrite.json", "raise", True)
    assert rewrite[2] is not None
    assert rewrite[2].startswith("ContentRewritten")
    cut = anyio.run(_async_outcome, CASSETTES / "cut-mid-event.json", "events", True)
    assert cut[2] is not None
    assert cut[1], "the text before the cut is kept"


@pytest.mark.parametrize("mode", ["events", "raise", "ignore"])
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_without_a_callback_the_text_and_error_are_the_same(path: Path, mode: str) -> None:
    # (Progress.take_all's way: deltas only in C, any other event by take.)
    iterated = anyio.run(_async_outcome, path, mode, False)
    batched = anyio.run(_async_outcome, path, mode, None)
    assert batched == ([], iterated[1], iterated[2])


def _stop_at_first(value: object) -> None:
    # A callback that raises StopIteration (an exhausted next(), say): its
    # error, not the stream's end.
    raise StopIteration


def test_a_callbacks_stop_iteration_is_raised_not_taken_for_the_end() -> None:
    cassette = cassette_at(CASSETTES / "plain-chat.json")
    prompt, model = next_chat(text_steps(cassette), 0) or ("", "")
    with (
        Client(
            cassette.origin,
            connector=SyncReplayConnector(cassette),
            retry=REPLAY_RETRY,
            timeout=Timeout(None, None, None),
            clock=recorded_clock(cassette),
        ) as client,
        client.stream(prompt, model=model) as stream,
        pytest.raises(StopIteration),
    ):
        stream._read_to_end(_stop_at_first)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_an_async_callbacks_stop_async_iteration_is_raised(backend: str) -> None:
    def stop(value: object) -> None:
        raise StopAsyncIteration

    async def main() -> None:
        cassette = cassette_at(CASSETTES / "plain-chat.json")
        prompt, model = next_chat(text_steps(cassette), 0) or ("", "")
        async with (
            AsyncClient(
                cassette.origin,
                connector=AsyncReplayConnector(cassette),
                retry=REPLAY_RETRY,
                timeout=Timeout(None, None, None),
                clock=recorded_clock(cassette),
            ) as client,
            client.stream(prompt, model=model) as stream,
        ):
            with pytest.raises(StopAsyncIteration):
                await stream._read_to_end(stop)

    anyio.run(main, backend=backend)
