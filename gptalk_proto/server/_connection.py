"""The server role at the bytes level: :class:`Service` decisions framed by h11.

A driver (the reference server) loops::

    conn = ServerConnection(service)
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif event is PAUSED:
            break                                   # close the connection
        else:                                       # RequestReceived or BadRequest
            for action in conn.respond(event, now=time.time()):
                if isinstance(action, Send): sock.sendall(action.data)
                elif isinstance(action, Pause): time.sleep(action.seconds)
                else: break                          # Close: drop the connection

The driver only moves bytes and waits; every decision is made here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import suppress
from http import HTTPStatus
from typing import NamedTuple

import h11

from .._errors import InvalidHTTP, LocalProtocolError
from .._http11 import continue_if_asked, next_h11_event, send_h11
from .._util import NEED_DATA, PAUSED, NeedData, Paused
from ._service import Abort, Chunk, Drip, End, Head, Pause, Service

__all__ = [
    "DEFAULT_MAX_REQUEST_BODY",
    "DEFAULT_MAX_REQUEST_HEAD",
    "BadRequest",
    "Close",
    "RequestReceived",
    "Send",
    "ServerConnection",
]

#: Cap on a request body, in bytes.  GPTalk requests are small JSON objects
#: (the prompt is the largest field); past this the server answers 413.
DEFAULT_MAX_REQUEST_BODY = 1024 * 1024

#: Cap on a request head (request line and headers), in bytes; past this h11
#: refuses the request and the server answers 431.
DEFAULT_MAX_REQUEST_HEAD = 16 * 1024

SERVER_HEADER = ("server", "gptalk-reference/0.1")


def _reason(status: int) -> bytes:
    # RFC 9112 section 4: the reason phrase is for people; the client ignores it.
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


class RequestReceived(NamedTuple):
    """A complete request (head and body)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


class BadRequest(NamedTuple):
    """A request the server cannot process; it answers ``status`` and closes."""

    status: int
    reason: str


class Send(NamedTuple):
    """Write these bytes."""

    data: bytes


class Close(NamedTuple):
    """Close the connection now (abruptly when mid-response)."""


# Pause (from _service) is the third action: wait, then go on.
ServerAction = Send | Pause | Close


class ServerConnection:
    """One server-side HTTP/1.1 connection for a :class:`Service`.

    Args:
        service: the shared service state.
        max_body_size: cap on a request body (413 past it).
        max_head_size: cap on a request head (431 past it).
    """

    def __init__(
        self,
        service: Service,
        *,
        max_body_size: int = DEFAULT_MAX_REQUEST_BODY,
        max_head_size: int = DEFAULT_MAX_REQUEST_HEAD,
    ) -> None:
        self.service = service
        self.max_body_size = max_body_size
        self.max_head_size = max_head_size
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head_size)
        self._request: h11.Request | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._received_any = False

    @property
    def waiting_for_head(self) -> bool:
        """True once bytes of a new request arrived and its head is not complete.

        The driver times out a client that is slow to send its head (a
        slowloris) while this is True, and uses an idle timeout otherwise.
        """
        return self._request is None and (self._received_any or bool(self._h11.trailing_data[0]))

    @property
    def request_begun(self) -> bool:
        """True while a request is partly received: part of its head, or its
        head and not all of its body (one pipelined behind another in the
        same read too).  The driver times it, and counts it as partial."""
        return self._request is not None or self.waiting_for_head

    def receive_data(self, data: bytes) -> None:
        """Bytes from the client; ``b""`` means it closed its side."""
        if data and self._request is None:
            self._received_any = True
        # Data after EOF (RuntimeError in h11): the peer is gone; ignore it.
        with suppress(RuntimeError):
            self._h11.receive_data(data)

    def next_event(self) -> RequestReceived | BadRequest | NeedData | Paused:
        """A complete request, a bad one, ``NEED_DATA``, or ``PAUSED`` (close)."""
        conn = self._h11
        while True:
            try:
                event = next_h11_event(conn)
            except InvalidHTTP as exc:
                return BadRequest(exc.status_hint, str(exc))
            if event is h11.NEED_DATA:
                return NEED_DATA
            if isinstance(event, h11.Request):
                self._request = event
                self._body = []
                self._body_size = 0
                # h11 caps a head only while it is incomplete in its buffer; a
                # head that arrives whole in one read is measured here.
                head_size = len(event.target) + sum(len(n) + len(v) + 4 for n, v in event.headers)
                if head_size > self.max_head_size:
                    return BadRequest(431, f"request head over {self.max_head_size} bytes")
                length = next((v for n, v in event.headers if n == b"content-length"), None)
                if length is not None and int(length) > self.max_body_size:
                    return BadRequest(413, f"request body over {self.max_body_size} bytes")
            elif isinstance(event, h11.Data):
                self._body_size += len(event.data)
                if self._body_size > self.max_body_size:
                    return BadRequest(413, f"request body over {self.max_body_size} bytes")
                self._body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                request = self._request
                assert request is not None
                return RequestReceived(
                    request.method.decode("ascii"),
                    request.target.decode("ascii"),
                    tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in request.headers),
                    b"".join(self._body),
                )
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return PAUSED

    def interim_response(self) -> bytes:
        """``HTTP/1.1 100 Continue`` when the request being read asked for
        it (``Expect: 100-continue`` in an HTTP/1.1 head) and none of its
        body has come yet, once; else ``b""``.  A driver asks when
        :meth:`next_event` wants data for a begun request, and writes it
        before it reads on.  RFC 9110 section 10.1.1: the server "MUST NOT
        wait for the content before sending the 100", "MAY omit" it once
        some of the content came; a head refused (413, 431) is answered at
        once instead, never after a 100."""
        return b"" if self._request is None else continue_if_asked(self._h11)

    def respond(
        self, event: RequestReceived | BadRequest, *, now: float
    ) -> Iterator[Send | Pause | Close]:
        """The actions that answer ``event``; ``now`` is the unix time."""
        if isinstance(event, BadRequest):
            return self._refuse(event)
        if self._request is None:
            raise LocalProtocolError("respond() without a received request")
        steps = self.service.handle(event.method, event.target, event.headers, event.body, now=now)
        return self._frame(steps)

    @property
    def _head_only(self) -> bool:
        # RFC 9110 section 9.3.2: a response to HEAD has no content (h11 refuses
        # any); its head says what GET would have sent.
        return self._request is not None and self._request.method == b"HEAD"

    def _refuse(self, event: BadRequest) -> Iterator[Send | Pause | Close]:
        conn = self._h11
        body = json.dumps({"code": event.status, "msg": event.reason[:200]}).encode("ascii")
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            headers = [
                SERVER_HEADER,
                ("content-type", "application/json"),
                ("content-length", str(len(body))),
                ("connection", "close"),
            ]
            response = h11.Response(
                status_code=event.status, headers=headers, reason=_reason(event.status)
            )
            out = b""
            try:
                out += send_h11(conn, response)
                if not self._head_only:
                    out += send_h11(conn, h11.Data(data=body))
                out += send_h11(conn, h11.EndOfMessage())
            except LocalProtocolError:
                pass  # what was framed so far still goes; then the close
            if out:
                yield Send(out)
        yield Close()

    def _frame(self, steps: Iterator[object]) -> Iterator[Send | Pause | Close]:
        conn = self._h11
        drip: float | None = None
        head_only = self._head_only
        for step in steps:
            out: bytes
            if isinstance(step, Chunk):
                if head_only:
                    continue
                out = send_h11(conn, h11.Data(data=step.data))
            elif isinstance(step, Head):
                headers = [SERVER_HEADER, *step.headers]
                if step.length is not None:
                    # RFC 9110 section 8.6: for HEAD, the length GET would send.
                    headers.append(("content-length", str(step.length)))
                response = h11.Response(
                    status_code=step.status, headers=headers, reason=_reason(step.status)
                )
                out = send_h11(conn, response)
            elif isinstance(step, End):
                out = send_h11(conn, h11.EndOfMessage())
            elif isinstance(step, Pause):
                yield step
                continue
            elif isinstance(step, Drip):
                drip = step.seconds
                continue
            elif isinstance(step, Abort):
                yield Close()
                return
            else:  # pragma: no cover - Step is closed
                raise AssertionError(f"unknown step {step!r}")
            if not out:
                continue
            if drip is None:
                yield Send(out)
            else:
                for index in range(len(out)):
                    yield Send(out[index : index + 1])
                    yield Pause(drip)
        self._request = None
        self._received_any = False
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            yield Close()
