"""Run chats the same way on every client backend.

``KINDS`` names the five ways a client can run: AsyncClient with its default
backend on asyncio (native asyncio transports), on anyio over asyncio, on
anyio over trio, on trio's own streams, and the blocking Client.
Tests parametrize over them and call :func:`stream` / :func:`many`, so every
scenario is written once and runs on each.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import anyio

import gptalk_proto as g
from gptalk_transports import AsyncClient, Client

KINDS = ["asyncio", "anyio-asyncio", "anyio-trio", "trio", "blocking"]
ASYNC_KINDS = {
    "asyncio": ("auto", "asyncio"),
    "anyio-asyncio": ("anyio", "asyncio"),
    "anyio-trio": ("anyio", "trio"),
    "trio": ("trio", "trio"),
}
Messages = str | Sequence[Mapping[str, str]]


class Outcome(NamedTuple):
    text: str
    deltas: list[str]
    retries: int
    connections: int


def stream(
    kind: str,
    url: str,
    messages: Messages = "Hello, how are you?",
    *,
    into: list[str] | None = None,
    on_rewrite: str = "raise",
    **client_kwargs: Any,
) -> Outcome:
    """One chat through ``client.stream``; deltas also go to ``into`` as they
    arrive, so a test can see what came before an error."""
    deltas: list[str] = [] if into is None else into
    if kind == "blocking":
        with Client(url, **client_kwargs) as client:
            with client.stream(messages, on_rewrite=on_rewrite) as chat:  # type: ignore[arg-type]
                deltas.extend(chat)
            return Outcome(chat.text, deltas, chat.retries, client.connections_opened)
    backend, loop = ASYNC_KINDS[kind]

    async def main() -> Outcome:
        async with AsyncClient(url, backend=backend, **client_kwargs) as client:
            async with client.stream(messages, on_rewrite=on_rewrite) as chat:  # type: ignore[arg-type]
                async for delta in chat:
                    deltas.append(delta)
            return Outcome(chat.text, deltas, chat.retries, client.connections_opened)

    return anyio.run(main, backend=loop)


def many(
    kind: str,
    url: str,
    prompts: Sequence[str],
    *,
    credentials: g.Credentials | None = None,
    **client_kwargs: Any,
) -> tuple[list[str], int]:
    """All ``prompts`` at once over one client; (replies in order, connections opened)."""
    replies: list[str] = [""] * len(prompts)
    if kind == "blocking":
        errors: list[BaseException] = []
        with Client(url, credentials=credentials, **client_kwargs) as client:

            def one(index: int) -> None:
                try:
                    replies[index] = client.chat(prompts[index])
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]
            return replies, client.connections_opened
    backend, loop = ASYNC_KINDS[kind]

    async def main() -> tuple[list[str], int]:
        async with AsyncClient(
            url, backend=backend, credentials=credentials, **client_kwargs
        ) as client:

            async def one(index: int) -> None:
                replies[index] = await client.chat(prompts[index])

            async with anyio.create_task_group() as group:
                for index in range(len(prompts)):
                    group.start_soon(one, index)
            return replies, client.connections_opened

    return anyio.run(main, backend=loop)


def open_fds() -> set[int]:
    """This process's open file descriptors."""
    return {int(name) for name in os.listdir("/proc/self/fd")}


def run_async(kind: str, function: Callable[..., Any], *args: Any) -> Any:
    """Run ``function(backend_name, *args)`` on ``kind``'s event loop."""
    backend, loop = ASYNC_KINDS[kind]
    return anyio.run(function, backend, *args, backend=loop)
