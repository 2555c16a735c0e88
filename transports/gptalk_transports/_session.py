"""Whole sessions: record chats into a cassette, replay a cassette's chats.

Replay needs only the cassette: the prompts (and models) are read from its
text requests, and the client runs on the recorded wall-clock time, so its
token-expiry decisions replay as they were made.  Retries replay too: a
recorded 503 or quota refusal makes the replaying client retry exactly as the
recording one did.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from datetime import datetime, timezone
from functools import lru_cache
from typing import NamedTuple

from gptalk_proto import DEFAULT_MODEL, ChatEvent, GPTalkError
from gptalk_proto.cassette import Cassette, CassetteError, text_request_fields
from gptalk_proto.server import Fault, ReplyGenerator, default_reply

from ._async.client import AsyncClient
from ._async.connector import AsyncConnector
from ._async.recording import AsyncRecordingConnector
from ._async.replay import AsyncReplayClock, AsyncReplayConnector
from ._cassettes import Recording, ReplayTiming
from ._config import Origin, Timeout, make_ssl_context
from ._env_proxy import choose_proxy
from ._retry import RetryPolicy
from ._server.refserver import make_service, serve_in_background

__all__ = ["ChatResult", "record_session", "recorded_clock", "replay_session", "text_steps"]

#: Replay makes the retry decisions the recording client made, without the
#: backoff or Retry-After waits (the recorded timing, if wanted, is the replay's own).
REPLAY_RETRY = RetryPolicy(
    retries=RetryPolicy().retries, backoff=0.0, max_backoff=0.0, max_retry_after=0.0
)


class ChatResult(NamedTuple):
    """One chat of a session: its prompt, its text, and how it ended."""

    prompt: str
    text: str
    error: GPTalkError | None


EventSink = Callable[[ChatEvent], None]


#: Cap on the text-request bodies whose fields are remembered: a cassette has a
#: few, read again on every replay of it (the same bytes, so the same fields).
MAX_REMEMBERED_TEXT_BODIES = 256


@lru_cache(maxsize=MAX_REMEMBERED_TEXT_BODIES)
def _text_fields(body: bytes) -> tuple[str, str] | None:
    return text_request_fields(body)


def text_steps(cassette: Cassette) -> list[tuple[int, str, str]]:
    """``(step, prompt, model)`` of every text request in the cassette."""
    steps = []
    for index, item in enumerate(cassette.interactions):
        fields = _text_fields(item.request.body) if item.kind == "text" else None
        if fields is not None:
            prompt, model = fields
            steps.append((index, prompt, model or DEFAULT_MODEL))
    return steps


def next_chat(steps: list[tuple[int, str, str]], played: int) -> tuple[str, str] | None:
    """``(prompt, model)`` of the first chat whose text request is at or past
    step ``played`` (a retried request belongs to the chat before it), or None."""
    for index, prompt, model in steps:
        if index >= played:
            return prompt, model
    return None


def recorded_clock(cassette: Cassette) -> Callable[[], float]:
    """Unix time as it was during the recording (running on from its start)."""
    try:
        start = datetime.fromisoformat(cassette.recorded_at.replace("Z", "+00:00"))
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        epoch = start.timestamp()
    except ValueError:
        epoch = time.time()
    origin = time.monotonic()
    return lambda: epoch + (time.monotonic() - origin)


async def _run_chat(
    client: AsyncClient, prompt: str, model: str, on_event: EventSink | None
) -> ChatResult:
    try:
        async with client.events(prompt, model=model) as events:
            # Every event, as `async for` gives them, a batch (a read's
            # events) at a time: a long reply's hundred events cost a few
            # calls, not an __anext__ each.
            await events._read_to_end(on_event)
            return ChatResult(prompt, events.text, None)
    except GPTalkError as error:
        text = getattr(error, "text", "")
        return ChatResult(prompt, text if isinstance(text, str) else "", error)


async def replay_session(
    cassette: Cassette,
    *,
    backend: str = "auto",
    timing: ReplayTiming | None = None,
    rechunk: str | int = "recorded",
    clock: AsyncReplayClock | None = None,
    on_event: EventSink | None = None,
) -> list[ChatResult]:
    """Replay every chat of ``cassette`` through the full client, offline.

    ``backend`` is the client's (``"auto"``: native asyncio on asyncio, anyio
    on trio).  The replayed connections do no IO, so it decides only how the
    client waits and locks; any backend replays the same.

    Raises :class:`~gptalk_proto.cassette.CassetteMismatch` if the client's requests
    leave the recorded path and :class:`~gptalk_proto.cassette.CassetteUnplayed` if
    steps remain at the end.
    """
    connector = AsyncReplayConnector(cassette, timing=timing, rechunk=rechunk, clock=clock)
    results: list[ChatResult] = []
    steps = text_steps(cassette)
    async with AsyncClient(
        cassette.origin,
        connector=connector,
        backend=backend,
        retry=REPLAY_RETRY,
        timeout=Timeout(None, None, None),
        clock=recorded_clock(cassette),
    ) as client:
        while True:
            played = connector.replayer.played
            upcoming = next_chat(steps, played)
            if upcoming is None:
                break
            prompt, model = upcoming
            if played and cassette.interactions[played].kind == "login":
                # A chat that begins with a login its client made although
                # it held a token: another client's (several tests sharing
                # a cassette, the recording proxy's clients, a restart), or
                # this one's after five chats or its token's expiry.  Either
                # way the recorded client had no token it would use, so
                # neither has this one: it logs in where the recording did,
                # with a fingerprint of its own.
                client.credentials.invalidate()
                connector.replayer.new_client()
            result = await _run_chat(client, prompt, model, on_event)
            if isinstance(result.error, CassetteError):
                raise result.error  # the client left the recorded path
            results.append(result)
            if connector.replayer.played == played:
                break
    connector.assert_played()
    return results


async def record_session(
    prompts: Sequence[str],
    *,
    url: str | None = None,
    faults: Sequence[str | Fault] = (),
    reply: ReplyGenerator = default_reply,
    model: str = DEFAULT_MODEL,
    proxy: str | None = None,
    trust_env: bool = True,
    verify: bool | str | ssl.SSLContext = True,
    redact: bool = True,
    secrets: Sequence[str] = (),
    max_events: int | None = None,
    idle_timeout: float | None = None,
    on_event: EventSink | None = None,
) -> tuple[Cassette, list[ChatResult]]:
    """Record one chat per prompt over TCP; without ``url``, against a
    reference server started here (with ``faults`` and ``reply``).

    ``proxy`` and ``trust_env`` are the clients' (the environment's proxy
    applies to a ``url`` only, never to the server started here)."""
    results: list[ChatResult] = []
    async with AsyncExitStack() as stack:
        if url is None:
            trust_env = False
            service = make_service(faults=faults, reply=reply)
            url = await stack.enter_async_context(serve_in_background(service))
        origin = Origin.parse(url)
        recording = Recording(url, max_events=max_events, idle_timeout=idle_timeout)
        inner = AsyncConnector(
            "anyio",
            origin,
            proxy=choose_proxy(origin, proxy, trust_env),
            ssl_context=make_ssl_context(verify) if origin.tls else None,
        )
        connector = AsyncRecordingConnector(inner, recording)
        client = await stack.enter_async_context(AsyncClient(url, connector=connector))
        for prompt in prompts:
            results.append(await _run_chat(client, prompt, model, on_event))
    return recording.cassette(redact=redact, secrets=tuple(secrets)), results
