"""Requests read back from the bytes a client wrote.

The recorder and the replayer both watch a client's requests without
answering them through h11 (the recorder only listens; the replayer answers
from the cassette).  An h11 server connection that never sends a response
cannot cycle to the next request, so each request gets a fresh parser, handed
whatever the previous one read past the end of its request.
"""

from __future__ import annotations

from typing import NamedTuple

import h11

from .._errors import InvalidHTTP
from .._http11 import next_h11_event

__all__ = ["ReadRequest", "RequestReader"]


class ReadRequest(NamedTuple):
    """One whole request: its head, its body, and the ``t`` given with the
    bytes that completed its head."""

    head: h11.Request
    body: bytes
    t: float


class RequestReader:
    """Splits a client's bytes into requests.

    Args:
        max_size: cap, in bytes, on a request's head (h11's
            ``max_incomplete_event_size``) and, apart, on its body: both are
            held until complete, and GPTalk's requests are small.
    """

    __slots__ = ("_body", "_body_size", "_h11", "_head", "_max_size", "_t")

    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=max_size)
        self._head: h11.Request | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._t = 0.0

    def feed(self, data: bytes, t: float = 0.0) -> list[ReadRequest]:
        """Bytes the client wrote (at ``t``); the requests they completed.

        Raises :class:`~gptalk_proto._errors.InvalidHTTP` on invalid HTTP; the
        caller says what that means in its own terms.
        """
        done: list[ReadRequest] = []
        self._h11.receive_data(data)
        while True:
            event = next_h11_event(self._h11)
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return done
            if isinstance(event, h11.Request):
                self._head, self._body, self._body_size, self._t = event, [], 0, t
            elif isinstance(event, h11.Data):
                self._body_size += len(event.data)
                if self._body_size > self._max_size:
                    raise InvalidHTTP(
                        f"a request body over {self._max_size} bytes", status_hint=413
                    )
                self._body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert self._head is not None
                done.append(ReadRequest(self._head, b"".join(self._body), self._t))
                self._head, self._body = None, []
                leftover, _ = self._h11.trailing_data
                self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=self._max_size)
                if leftover:
                    self._h11.receive_data(leftover)
