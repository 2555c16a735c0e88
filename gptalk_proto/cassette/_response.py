"""A recorded response's bytes read back: status, headers, body and events.

Loading a cassette parses every response's chunks again (through h11, as the
client did) and holds them to the stored head and events; the HAR export and
the tests use the same reading.
"""

from __future__ import annotations

from dataclasses import dataclass

import h11

from .._errors import InvalidHTTP, RemoteProtocolError
from .._http11 import next_h11_event, response_parser
from ..sse._event import SSEEvent
from ..sse._media import is_event_stream
from ..sse._parser import SSEParser

__all__ = ["ReadResponse", "parse_response", "read_response"]


def parse_response(
    method: str, wire: bytes
) -> tuple[int, tuple[tuple[str, str], ...], bytes, list[SSEEvent]]:
    """Status, headers, body and SSE events of a response's raw bytes.

    A response cut short (no complete body) gives what arrived.
    """
    read = read_response(method, wire)
    return read.status, read.headers, read.body, read.events


@dataclass(frozen=True)
class ReadResponse:
    """One response read back from the bytes that carried it."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    events: list[SSEEvent]
    #: Bytes of ``wire`` the response took when it ended as its framing says
    #: (a length, a last chunk); None when the bytes stop first (cut short,
    #: or a body that only the connection's close ends).  Bytes after it are
    #: the next response's, if the client pipelined its requests.
    length: int | None


def read_response(method: str, wire: bytes) -> ReadResponse:
    """:func:`parse_response`, and where in ``wire`` the response ended."""
    conn = response_parser(method)
    # The end of the bytes is shown to h11 only once it asks for more: a
    # response that ends before them ends as its framing says (``length``),
    # one whose body only a close ends ends at the close.
    conn.receive_data(wire)
    closed = False
    status = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: list[bytes] = []
    parser: SSEParser | None = None
    events: list[SSEEvent] = []
    length: int | None = None
    while True:
        try:
            event = next_h11_event(conn)
        except InvalidHTTP as exc:
            if status:
                break  # cut short: keep what came
            if b"\r\n\r\n" not in wire and b"\n\n" not in wire:
                # h11 says "peer unexpectedly closed connection": true of a
                # socket, but here the bytes simply stop inside the head.
                raise RemoteProtocolError("the bytes end before the response head does") from None
            raise RemoteProtocolError(str(exc)) from None
        if isinstance(event, h11.Response):
            status = event.status_code
            headers = tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in event.headers)
            if is_event_stream(next((v for n, v in headers if n == "content-type"), "")):
                parser = SSEParser()
        elif isinstance(event, h11.Data):
            body.append(bytes(event.data))
            if parser is not None:
                events.extend(parser.feed(event.data))
        elif event is h11.NEED_DATA and not closed:
            conn.receive_data(b"")
            closed = True
        elif isinstance(event, h11.EndOfMessage):
            if not closed:
                # What h11 has not consumed is what follows the message.
                length = len(wire) - len(conn.trailing_data[0])
            break
        elif isinstance(event, h11.ConnectionClosed) or event is h11.NEED_DATA:
            break
    if not status:
        raise RemoteProtocolError("no response head in the recorded bytes")
    return ReadResponse(status, headers, b"".join(body), events, length)
