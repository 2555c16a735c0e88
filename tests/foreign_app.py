"""A GPTalk server this project did not write: starlette, sse-starlette and uvicorn.

Nothing here comes from ``gptalk_proto``: the app keeps its own token store,
writes its own envelopes and streams with other people's SSE code, so the
clients meet a peer whose bytes they were not written against.

Two ways to stream the reply, picked by :attr:`AppState.variant`:

* ``"sse"``: sse-starlette's ``EventSourceResponse``, CRLF line ends, an
  ``id:`` field on every event and keep-alive comment pings; each event waits
  for a ping to have gone out first, so pings always interleave with events.
* ``"raw"``: starlette's ``StreamingResponse`` writing bytes by hand: CR-only
  line ends, comment lines, raw (not ``\\u``-escaped) UTF-8 JSON, and events
  split across chunks, some in the middle of a multi-byte character.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

import uvicorn
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

__all__ = ["PIECES", "AppState", "make_app", "reply_pieces", "run_in_thread"]

#: Uses a login token is good for.
TOKEN_USES = 5
#: sse-starlette's keep-alive ping interval, in seconds.
PING_INTERVAL = 0.005
VARIANTS = ("sse", "raw")

#: The fixed part of every reply: JSON escapes (quotes, backslash, newline,
#: tab), non-ASCII, an emoji, and U+2028, which ``str.splitlines`` would take
#: for a line end although SSE does not.
PIECES = [
    '"quoted" ',
    "back\\slash ",
    "new\nline ",
    "tab\there ",
    "na\u00efve caf\u00e9 ",
    "\u65e5\u672c\u8a9e ",
    "line\u2028separator ",
    "\U0001f600",
]

_FINGERPRINT = re.compile(r"[0-9a-f]{32}")


def reply_pieces(prompt: str) -> list[str]:
    """The app's reply to ``prompt``, piece by piece (one event per piece)."""
    return [f"Re: {prompt}\n", *PIECES]


@dataclass
class AppState:
    """The app's token store, its counters and what a test told it to do."""

    variant: str = "sse"
    #: Text requests (numbered from 1) answered with a quota envelope.
    refuse_texts: set[int] = field(default_factory=set)
    logins: int = 0
    texts: int = 0
    streams: int = 0
    pings: int = 0
    #: Error envelopes the app sent.
    refusals: int = 0
    #: Anything the clients sent that a GPTalk server would not accept.
    problems: list[str] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)

    def reset(self, variant: str = "sse") -> None:
        """Forget everything (call while no request is in flight)."""
        self.__init__(variant=variant)  # type: ignore[misc]


def _envelope(code: int, msg: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg})


def make_app(state: AppState, prefix: str = "") -> Starlette:
    """The three GPTalk endpoints over ``state``; with a ``prefix``, mounted
    under it (a service behind a path-routing gateway)."""

    async def login(request: Request) -> Response:
        body = await request.json()
        fingerprint = body.get("fingerprint")
        if not isinstance(fingerprint, str) or not _FINGERPRINT.fullmatch(fingerprint):
            state.problems.append(f"login: bad fingerprint {fingerprint!r}")
            return _envelope(40000, "bad request")
        if body.get("platform") != "fingerprint":
            state.problems.append(f"login: bad platform {body.get('platform')!r}")
        state.logins += 1
        token = secrets.token_urlsafe(24)
        state.tokens[token] = TOKEN_USES
        data = {"token": token, "expires_at": int(time.time()) + 3600}
        return JSONResponse({"code": 0, "msg": "ok", "data": data})

    async def text(request: Request) -> Response:
        state.texts += 1
        body = await request.json()
        for key, kind in (("content", str), ("accept", str), ("model", str)):
            if not isinstance(body.get(key), kind):
                state.problems.append(f"text: no {kind.__name__} {key!r}")
        if body.get("accept") != "stream":
            state.problems.append(f"text: accept is {body.get('accept')!r}")
        if state.texts in state.refuse_texts:
            state.refusals += 1
            return _envelope(42901, "quota exhausted")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in state.tokens:
            state.problems.append("text: unknown or missing bearer token")
            state.refusals += 1
            return _envelope(40101, "invalid token")
        if state.tokens[token] <= 0:
            state.problems.append("text: a token used more than 5 times")
            state.refusals += 1
            return _envelope(42901, "quota exhausted")
        state.tokens[token] -= 1
        stream_token = secrets.token_urlsafe(16)
        state.pending[stream_token] = body.get("content", "")
        return JSONResponse({"code": 0, "msg": "ok", "data": {"token": stream_token}})

    async def stream(request: Request) -> Response:
        state.streams += 1
        prompt = state.pending.pop(request.query_params.get("token", ""), None)
        if prompt is None:
            state.problems.append("stream: unknown stream token")
            state.refusals += 1
            return _envelope(40101, "invalid stream token")
        pieces = reply_pieces(prompt)
        if state.variant == "sse":
            return _sse_response(state, pieces)
        return StreamingResponse(_raw_stream(pieces), media_type="text/event-stream")

    routes = [
        Route("/api/chatgpt/user/login", login, methods=["POST"]),
        Route("/api/chatgpt/chatapi/text", text, methods=["POST"]),
        Route("/api/chatgpt/chatapi/stream", stream, methods=["GET"]),
    ]
    if prefix:
        return Starlette(routes=[Mount(prefix, routes=routes)])
    return Starlette(routes=routes)


def _sse_response(state: AppState, pieces: list[str]) -> EventSourceResponse:
    pinged = asyncio.Event()

    def ping() -> ServerSentEvent:
        state.pings += 1
        pinged.set()
        return ServerSentEvent(comment="keep-alive", sep="\r\n")

    async def events() -> AsyncIterator[ServerSentEvent]:
        text = ""
        for number, piece in enumerate(pieces, 1):
            # A ping goes out before every event: pings interleave for sure,
            # whatever the timing (bounded: a ping is due every few ms).
            await asyncio.wait_for(pinged.wait(), timeout=10)
            pinged.clear()
            await asyncio.sleep(0.001)
            text += piece
            data = json.dumps({"content": text})
            yield ServerSentEvent(data, id=str(number), sep="\r\n")
        await asyncio.wait_for(pinged.wait(), timeout=10)
        yield ServerSentEvent("[DONE]", sep="\r\n")

    return EventSourceResponse(events(), sep="\r\n", ping=PING_INTERVAL, ping_message_factory=ping)


async def _raw_stream(pieces: list[str]) -> AsyncIterator[bytes]:
    yield b": a hand-written event stream\r: with CR-only line ends\r\r"
    text = ""
    for number, piece in enumerate(pieces):
        text += piece
        event = ("data: " + json.dumps({"content": text}, ensure_ascii=False) + "\r\r").encode()
        if number % 2:
            # Split inside the JSON, often inside a multi-byte character.
            middle = len(event) // 2
            yield event[:middle]
            await asyncio.sleep(0.001)
            yield event[middle:]
        else:
            yield event
        yield b": keep-alive\r"
        await asyncio.sleep(0.001)
    yield b"data: [DONE]\r\r"


@contextmanager
def uvicorn_in_thread(app: Starlette, name: str) -> Iterator[str]:
    """Serve ``app`` with uvicorn (h11) in a thread named ``name`` until the
    block ends; yield its root URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        http="h11",
        ws="none",
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10  # a safety net: started is an event
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        (listener,) = server.servers
        port = listener.sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():
            raise RuntimeError("uvicorn did not stop")


def run_in_thread(state: AppState, prefix: str = "") -> AbstractContextManager[str]:
    """Serve the app with uvicorn in a thread until the block ends; yield its
    root URL (the app under ``prefix`` if one is given)."""
    return uvicorn_in_thread(make_app(state, prefix), "foreign-uvicorn")
