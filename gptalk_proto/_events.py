"""Events a chat machine emits, and the request/response descriptions it hands out.

All are immutable.  ``TextDelta`` is built once per SSE event on the hot path,
so it is a ``NamedTuple`` (cheap to build); the rarer ones are too, for one
consistent style: equality by value, ``repr`` for debugging, no mutation.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "ChatDone",
    "ChatEvent",
    "LoggedIn",
    "ReconnectNeeded",
    "Request",
    "TextDelta",
    "TextRewritten",
]


class LoggedIn(NamedTuple):
    """A login succeeded; the shared credentials now hold a fresh token.

    The token itself is deliberately not carried here (it would end up in
    logs); ``expires_at`` is the service's expiry in unix seconds.
    """

    expires_at: float


class TextDelta(NamedTuple):
    """New reply text: what the latest cumulative content added."""

    text: str


class TextRewritten(NamedTuple):
    """The service's cumulative content no longer extends what came before.

    GPTalk sends the whole reply so far in every event.  When the new text does
    not start with the old one, no delta can express the change; the original
    client sliced ``new[len(old):]`` and printed garbage.  This event carries the
    whole new text (``text``) and the text it replaces (``previous``); deltas
    after it extend ``text``.
    """

    text: str
    previous: str


class ChatDone(NamedTuple):
    """The stream's ``[DONE]`` marker arrived; ``text`` is the whole reply."""

    text: str


class ReconnectNeeded(NamedTuple):
    """The server will not reuse this connection (bytes level only).

    Close it and open a new one: the bytes of the next ``send()`` belong on the
    new connection.  ``reason`` says why (``Connection: close``, HTTP/1.0, ...).
    """

    reason: str


ChatEvent = LoggedIn | TextDelta | TextRewritten | ChatDone | ReconnectNeeded
"""Every event a chat machine can return from ``next_event()``."""


class Request(NamedTuple):
    """One HTTP request the chat wants made (exchange level).

    ``target`` is origin-form (``/api/...?...``); ``headers`` are the GPTalk
    headers in order, without ``Host`` and ``Content-Length`` (the HTTP client
    adds those).  ``kind`` is ``"login"``, ``"text"`` or ``"stream"``.
    """

    kind: str
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def __repr__(self) -> str:
        # Headers carry the bearer token and targets the stream token: keep
        # them out of reprs, which end up in logs and test output.
        return f"Request(kind={self.kind!r}, method={self.method!r}, body_size={len(self.body)})"
