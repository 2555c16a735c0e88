"""Re-chunk verification: a cassette's responses read back in other pieces.

Parsers break on the splits that record/replay tools erase: a CRLF split
across two reads (the CR ends a line on its own, WHATWG "Server-sent events",
9.2.6: "a U+000D CARRIAGE RETURN U+000A LINE FEED (CRLF) character pair, a
single U+000A LINE FEED (LF) character not preceded by a U+000D CARRIAGE
RETURN (CR) character, or a single U+000D CARRIAGE RETURN (CR) character not
followed by a U+000A LINE FEED (LF) character"), a UTF-8 character split
across two reads.  A cassette keeps every read as it came; this check feeds
each response's bytes through the same HTTP/1.1 and SSE parsers cut at every
split point, and in single bytes, and holds each reading to the recorded
events and body.  It needs no client: it serves any profile's cassettes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import h11

from .._errors import InvalidHTTP
from .._http11 import next_h11_event, response_parser
from ..sse._event import SSEEvent
from ..sse._media import is_event_stream
from ..sse._parser import SSEParser
from ._format import Cassette, CassetteError
from ._profiles import Profile
from ._replay import CassetteMismatch, Replayer

__all__ = ["MAX_EVERY_SPLIT", "RechunkReport", "verify_rechunked"]

#: Responses up to this many bytes are cut at every split point (a parse per
#: point: quadratic work, a few seconds at this size).  A longer one is cut
#: after every CR and LF, after every UTF-8 lead byte -- the splits parsers
#: break on -- and at every 61st byte, so a hostile cassette cannot make
#: verify run for hours.
MAX_EVERY_SPLIT = 16 * 1024


@dataclass(frozen=True)
class RechunkReport:
    """What :func:`verify_rechunked` tried: split points, of which between a
    CR and its LF, and inside a UTF-8 character."""

    exchanges: int
    events: int
    splits: int
    crlf_splits: int
    utf8_splits: int


def _read(method: str, pieces: Iterable[bytes]) -> tuple[bytes, list[SSEEvent]]:
    """The body and events of a response fed in ``pieces``, as a client reads."""
    conn = response_parser(method)
    body: list[bytes] = []
    events: list[SSEEvent] = []
    parser: SSEParser | None = None
    for piece in [*pieces, b""]:
        conn.receive_data(piece)
        while True:
            try:
                event = next_h11_event(conn)
            except InvalidHTTP:
                return b"".join(body), events  # cut short: what came
            if event is h11.NEED_DATA or isinstance(
                event, (h11.EndOfMessage, h11.ConnectionClosed)
            ):
                break
            if isinstance(event, h11.Response):
                ctype = dict(event.headers).get(b"content-type", b"").decode("latin-1")
                if is_event_stream(ctype):
                    parser = SSEParser()
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
                if parser is not None:
                    events.extend(parser.feed(event.data))
        if conn.their_state in (h11.DONE, h11.CLOSED, h11.ERROR):
            break
    return b"".join(body), events


def _points(wire: bytes) -> Iterable[int]:
    if len(wire) <= MAX_EVERY_SPLIT:
        return range(1, len(wire))
    return (
        i
        for i in range(1, len(wire))
        if i % 61 == 0 or wire[i - 1] in b"\r\n" or wire[i - 1] >= 0xC0
    )


def verify_rechunked(cassette: Cassette, profile: Profile | None = None) -> RechunkReport:
    """Check that every response reads the same whatever its pieces, and that
    every recorded request replays (matched under ``profile``, by default
    the cassette's own).

    Raises :class:`CassetteError` naming the exchange and the split point.
    """
    replayer = Replayer(cassette, profile)
    splits = crlf = utf8 = events = 0
    for index, item in enumerate(cassette.interactions):
        where = f"interactions[{index}]"
        request = item.request
        try:
            replayer.match(request.method, request.target, list(request.headers), request.body)
        except CassetteMismatch as exc:
            raise CassetteError(f"{where}: the recorded request does not replay ({exc})") from None
        wire = item.response.wire
        method = request.method
        expected = _read(method, [wire])
        if list(item.response.events) != expected[1]:
            raise CassetteError(f"{where}.events: differ from the events the chunks give")
        readings = {"as recorded": [c.data for c in item.response.chunks]}
        readings["in single bytes"] = [wire[i : i + 1] for i in range(len(wire))]
        for name, pieces in readings.items():
            if _read(method, pieces) != expected:
                raise CassetteError(f"{where}: read {name}, the response differs")
        for at in _points(wire):
            if _read(method, [wire[:at], wire[at:]]) != expected:
                raise CassetteError(f"{where}: split at byte {at}, the response reads differently")
            splits += 1
            crlf += wire[at - 1 : at + 1] == b"\r\n"
            utf8 += 0x80 <= wire[at] < 0xC0
        events += len(expected[1])
    return RechunkReport(len(cassette.interactions), events, splits, crlf, utf8)
