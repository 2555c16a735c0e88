"""Drive a client machine against canned server bytes.

A scripted server answers each request with the next raw response from a
list, whatever the request said: the way to put arbitrary (or arbitrarily
broken) server bytes in front of a :class:`~gptalk_proto.ClientConnection`.
The fuzz harness and the client properties use it; so can a test of one's
own that wants a particular answer on the wire.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from .._connection import ClientConnection
from .._errors import GPTalkError, LocalProtocolError
from .._events import ChatDone, ChatEvent, ReconnectNeeded, TextDelta, TextRewritten
from .._util import NEED_DATA, PAUSED, SEND_REQUEST

__all__ = ["JSON_TYPE", "SSE_TYPE", "Played", "check_reply", "http_response", "play_responses"]

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream; charset=utf-8"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}


def http_response(
    status: int,
    body: bytes,
    *,
    content_type: str = JSON_TYPE,
    framing: str = "length",
    chunk_sizes: Sequence[int] = (),
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """One raw HTTP/1.1 response.

    ``framing``: ``"length"`` (``Content-Length``), ``"chunked"`` (chunks of
    ``chunk_sizes`` bytes, cycled; the whole body in one chunk if empty) or
    ``"close"`` (no length: the body ends when the server closes).
    """
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Type: {content_type}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if framing == "length":
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        parts: list[bytes] = []
        sizes = [size for size in chunk_sizes if size > 0] or [max(len(body), 1)]
        start = 0
        index = 0
        while start < len(body):
            piece = body[start : start + sizes[index % len(sizes)]]
            parts.append(b"%x\r\n%s\r\n" % (len(piece), piece))
            start += len(piece)
            index += 1
        payload = b"".join(parts) + b"0\r\n\r\n"
    elif framing == "close":
        lines.append("Connection: close")
        payload = body
    else:
        raise LocalProtocolError(f"unknown framing {framing!r}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


class Played(NamedTuple):
    """What a client machine made of a scripted server.

    * ``events``: every event in order (``ReconnectNeeded`` included).
    * ``error``: the :class:`~gptalk_proto.GPTalkError` the chat ended in, or
      ``None`` when it ended in ``PAUSED`` (complete).
    * ``requests``: the bytes of every request the client sent.
    """

    events: list[ChatEvent]
    error: GPTalkError | None
    requests: list[bytes]


def play_responses(
    connection: ClientConnection,
    responses: Iterable[bytes | Sequence[bytes]],
    *,
    now: float = 1_700_000_000.0,
) -> Played:
    """Run ``connection`` until its chat ends, answering request *n* with
    response *n* (raw bytes, or a list of chunks fed one by one).

    When the client needs bytes and the current connection has none left, the
    server closes it (``receive_data(b"")``); requests beyond the script meet
    a server that closes without answering.  Bytes beyond a response stay on
    the connection, as on a real one.  A chat that ends returns; an error
    that is not a :class:`~gptalk_proto.GPTalkError` propagates, and a machine
    that still wants bytes after the end of the stream raises
    ``AssertionError`` (both are bugs in the machine, not in the server).
    """
    script = iter(responses)
    events: list[ChatEvent] = []
    requests: list[bytes] = []
    pending: deque[bytes] = deque()
    closed = False  # the current connection saw EOF
    while True:
        try:
            event = connection.next_event()
        except GPTalkError as error:
            return Played(events, error, requests)
        if event is SEND_REQUEST:
            if closed:
                # The server closed this connection: a driver opens a new one.
                connection.new_connection()
                pending.clear()
                closed = False
            requests.append(connection.send(now))
            response = next(script, None)
            if isinstance(response, (bytes, bytearray, memoryview)):
                pending.append(bytes(response))
            elif response is not None:
                pending.extend(bytes(chunk) for chunk in response)
        elif event is NEED_DATA:
            while pending and not pending[0]:
                pending.popleft()  # b"" would mean EOF to receive_data
            if pending:
                connection.receive_data(pending.popleft())
            elif not closed:
                connection.receive_data(b"")
                closed = True
            else:
                raise AssertionError("the client machine still waits for bytes after EOF")
        elif event is PAUSED:
            return Played(events, None, requests)
        else:
            if isinstance(event, ReconnectNeeded):
                pending.clear()  # what was left belonged to the old connection
                closed = False
            events.append(event)


def check_reply(events: Sequence[ChatEvent]) -> str:
    """The reply a successful chat's events spell; ``AssertionError`` if they
    are inconsistent.

    Deltas must extend the text, a rewrite must name the text it replaces,
    and exactly one :class:`~gptalk_proto.ChatDone` must come last, carrying
    the text the deltas built.
    """
    text = ""
    done: ChatDone | None = None
    for event in events:
        if done is not None:
            raise AssertionError(f"{event!r} came after ChatDone")
        if isinstance(event, TextDelta):
            if not event.text:
                raise AssertionError("an empty TextDelta")
            text += event.text
        elif isinstance(event, TextRewritten):
            if event.previous != text:
                raise AssertionError("TextRewritten.previous is not the text so far")
            if event.text.startswith(text):
                raise AssertionError("a TextRewritten that only extends the text")
            text = event.text
        elif isinstance(event, ChatDone):
            done = event
    if done is None:
        raise AssertionError("no ChatDone")
    if done.text != text:
        raise AssertionError("ChatDone.text is not what the deltas built")
    return text
