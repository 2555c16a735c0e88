"""A small OpenAI- and Anthropic-compatible streaming server (starlette, uvicorn).

Not the services: enough of their streaming wire for the official SDKs.

* ``POST /v1/chat/completions`` with ``"stream": true``: ``data: {...}``
  chunks (``chat.completion.chunk``, ``choices[].delta``), then
  ``data: [DONE]``; a ``: keep-alive`` comment first.
* ``POST /v1/messages`` with ``"stream": true``: Anthropic's typed events,
  ``event: message_start`` ... ``event: message_stop``.

A delay between events (so the recording has gaps to replay), a reply with
non-ASCII and an emoji (UTF-8 characters the re-chunk check splits), one
event written in two pieces cut inside a character.  A request without the
expected key gets a 401: the SDK must send its key, and the cassette must not
keep it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .foreign_app import uvicorn_in_thread

__all__ = ["API_KEY", "DELAY", "PIECES", "run_in_thread"]

#: The key the server wants (as a real one would, it is long and random-looking).
API_KEY = "sk-test-Zq8vN3xR7tL2mK9pW4yB6cH1dF5gJ0aS"
#: Seconds between two events.
DELAY = 0.01
#: The reply, one delta per piece.
PIECES = ["Bonjour", " \u00e0 vous", ", caf\u00e9 ", "\u65e5\u672c ", "\U0001f600", "!"]


def _key(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    return request.headers.get("x-api-key", "") or auth.removeprefix("Bearer ")


def _cut_inside_a_character(line: bytes) -> list[bytes]:
    """The line in two pieces, the cut inside its first multi-byte character."""
    at = next((i for i, byte in enumerate(line) if byte >= 0xC0), None)
    return [line] if at is None else [line[: at + 1], line[at + 1 :]]


async def _paced(lines: list[bytes]) -> AsyncIterator[bytes]:
    for number, line in enumerate(lines):
        if number:
            await asyncio.sleep(DELAY)
        for piece in _cut_inside_a_character(line) if number == 3 else [line]:
            yield piece


def _openai_lines(model: str) -> list[bytes]:
    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        body = {
            "id": "chatcmpl-replay",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"

    return [
        b": keep-alive\n\n",
        chunk({"role": "assistant", "content": ""}),
        *(chunk({"content": piece}) for piece in PIECES),
        chunk({}, "stop"),
        b"data: [DONE]\n\n",
    ]


def _anthropic_lines(model: str) -> list[bytes]:
    def event(kind: str, data: dict[str, object]) -> bytes:
        text = json.dumps({"type": kind, **data}, ensure_ascii=False)
        return f"event: {kind}\ndata: {text}\n\n".encode()

    message: dict[str, object] = {
        "id": "msg_replay",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    }
    return [
        event("message_start", {"message": message}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        event("ping", {}),
        *(
            event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": p}})
            for p in PIECES
        ),
        event("content_block_stop", {"index": 0}),
        event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 9},
            },
        ),
        event("message_stop", {}),
    ]


async def _chat(request: Request) -> Response:
    if _key(request) != API_KEY:
        return JSONResponse({"error": {"message": "bad key", "type": "auth"}}, status_code=401)
    body = await request.json()
    if not body.get("stream"):
        return JSONResponse({"error": {"message": "stream only", "type": "invalid"}}, 400)
    lines = (
        _anthropic_lines(body["model"])
        if request.url.path == "/v1/messages"
        else _openai_lines(body["model"])
    )
    return StreamingResponse(_paced(lines), media_type="text/event-stream")


def make_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/v1/chat/completions", _chat, methods=["POST"]),
            Route("/v1/messages", _chat, methods=["POST"]),
        ]
    )


def run_in_thread() -> AbstractContextManager[str]:
    """Serve the app with uvicorn in a thread until the block ends; yield its URL."""
    return uvicorn_in_thread(make_app(), "llm-uvicorn")
