"""End-to-end clients over loopback: ours, the seed's aiohttp stack, httpx-sse.

Each client runs whole chats (login when its token needs one, text, stream)
against the benchmark server and returns the reply text, which the runner
checks, so a fast wrong answer cannot count.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from gptalk_transports import AsyncClient

LOGIN = "/api/chatgpt/user/login"
TEXT = "/api/chatgpt/chatapi/text"
STREAM = "/api/chatgpt/chatapi/stream"


class BenchClient(Protocol):
    name: str

    def deltas(self, prompt: str) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...


class Ours:
    name = "gptalk-proto"

    def __init__(self, url: str, backend: str = "auto") -> None:
        self.client = AsyncClient(url, backend=backend)

    async def deltas(self, prompt: str) -> AsyncIterator[str]:
        async with self.client.stream(prompt) as stream:
            async for delta in stream:
                yield delta

    async def aclose(self) -> None:
        await self.client.aclose()


class Seed:
    """The original provider's stack: aiohttp (C HTTP parser),
    ``async for line in resp.content``, ``startswith(b"data: ")``, json.loads
    of the whole text in every event; the token kept for 5 uses."""

    name = "seed aiohttp"

    def __init__(self, url: str) -> None:
        import aiohttp

        self.url = url
        self.session = aiohttp.ClientSession(
            headers={"accept": "*/*", "content-type": "application/json"},
            connector=aiohttp.TCPConnector(limit=0),
        )
        self.auth: dict[str, Any] | None = None
        self.used = 0

    async def deltas(self, prompt: str) -> AsyncIterator[str]:
        if not self.auth or self.auth["expires_at"] < time.time() or self.used == 5:
            fingerprint = "0" * 32
            async with self.session.post(
                f"{self.url}{LOGIN}", json={"fingerprint": fingerprint, "platform": "fingerprint"}
            ) as response:
                response.raise_for_status()
                self.auth = (await response.json())["data"]
            self.used = 0
        self.used += 1
        headers = {"authorization": f"Bearer {self.auth['token']}"}
        async with self.session.post(
            f"{self.url}{TEXT}", headers=headers, json={"content": prompt, "accept": "stream"}
        ) as response:
            response.raise_for_status()
            token = (await response.json())["data"]["token"]
        async with self.session.get(f"{self.url}{STREAM}", params={"token": token}) as response:
            response.raise_for_status()
            last_message = ""
            async for line in response.content:
                if line.startswith(b"data: "):
                    if line.startswith(b"data: [DONE]"):
                        break
                    message = json.loads(line[6:-1])["content"]
                    yield message[len(last_message) :]
                    last_message = message

    async def aclose(self) -> None:
        await self.session.close()


class HttpxSSE:
    """httpx for the requests, httpx-sse for the event stream."""

    name = "httpx + httpx-sse"

    def __init__(self, url: str) -> None:
        import httpx

        self.url = url
        self.client = httpx.AsyncClient(
            base_url=url, timeout=60, limits=httpx.Limits(max_connections=None)
        )
        self.token: str | None = None
        self.used = 0

    async def deltas(self, prompt: str) -> AsyncIterator[str]:
        from httpx_sse import aconnect_sse

        if self.token is None or self.used == 5:
            response = await self.client.post(
                LOGIN, json={"fingerprint": "0" * 32, "platform": "fingerprint"}
            )
            self.token = response.json()["data"]["token"]
            self.used = 0
        self.used += 1
        response = await self.client.post(
            TEXT,
            headers={"authorization": f"Bearer {self.token}"},
            json={"content": prompt, "accept": "stream"},
        )
        token = response.json()["data"]["token"]
        async with aconnect_sse(self.client, "GET", STREAM, params={"token": token}) as source:
            last = ""
            async for event in source.aiter_sse():
                if event.data == "[DONE]":
                    break
                content = json.loads(event.data)["content"]
                yield content[len(last) :]
                last = content

    async def aclose(self) -> None:
        await self.client.aclose()


async def whole_reply(client: BenchClient, prompt: str) -> str:
    return "".join([delta async for delta in client.deltas(prompt)])


async def first_delta(client: BenchClient, prompt: str) -> float:
    """Seconds from the call to the first delta (the chat then runs to its end)."""
    started = time.perf_counter()
    took = 0.0
    async for _ in client.deltas(prompt):
        if not took:
            took = time.perf_counter() - started
    return took
