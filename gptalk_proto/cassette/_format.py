"""Cassettes: recorded GPTalk sessions, as data.

A cassette is one ordered session.  Each interaction is one HTTP exchange:
the request as the client sent it (method, target, headers, body) and the
response as it arrived -- the raw bytes of every read from the socket, each
with its time offset, HTTP framing included, so a replay feeds the client the
very bytes it parsed when recording -- plus, for an event stream, the SSE
events those bytes carry.

The JSON form is versioned and written deterministically: stable key order,
one chunk or event per line, text as text and other bytes as base64 with an
explicit ``encoding``, one ``recorded_at`` per cassette.  Loading is plain
JSON, validated field by field; then the chunks are parsed again and must give
the stored response head and events.  ``cassette.schema.json`` (shipped in this
package; ``gptalk cassette schema`` prints it) is the same format as a JSON Schema.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from .._errors import RemoteProtocolError
from ._loader import check_depth, from_json
from ._records import (
    FORMAT_VERSION,
    MAX_DEPTH,
    MAX_TIME,
    CassetteError,
    Interaction,
    RecordedChunk,
    RecordedRequest,
    RecordedResponse,
)
from ._response import parse_response

# The records are re-exported: the room's modules import the format from here.
__all__ = [
    "FORMAT_VERSION",
    "MAX_DEPTH",
    "MAX_TIME",
    "Cassette",
    "CassetteError",
    "Interaction",
    "RecordedChunk",
    "RecordedRequest",
    "RecordedResponse",
]


@dataclass(frozen=True)
class Cassette:
    """A recorded session."""

    interactions: tuple[Interaction, ...]
    recorded_at: str
    origin: str
    redacted: bool = True
    generator: str = ""
    format_version: int = FORMAT_VERSION
    meta: dict[str, Any] = field(default_factory=dict)
    #: The protocol profile it was recorded under (see :mod:`._profiles`);
    #: written only when not the default, so GPTalk cassettes are unchanged.
    profile: str = "gptalk"

    # -- writing ------------------------------------------------------------------

    def dumps(self) -> str:
        """The deterministic JSON text (ends with a newline)."""
        return "\n".join(self._lines()) + "\n"

    def _lines(self) -> Iterator[str]:
        # Every dict below is built with its keys in one fixed order, and
        # written in that order: sorting would reorder the recorded JSON bodies.
        def line(value: Any) -> str:
            return json.dumps(value, ensure_ascii=False)

        def block(name: str, rows: list[str], last: bool) -> Iterator[str]:
            end = "" if last else ","
            if not rows:
                yield f'      "{name}": []{end}'
                return
            yield f'      "{name}": ['
            for number, row in enumerate(rows):
                yield f"        {row}" + ("," if number < len(rows) - 1 else "")
            yield f"      ]{end}"

        yield "{"
        yield f'  "format_version": {self.format_version},'
        yield f'  "generator": {line(self.generator)},'
        yield f'  "meta": {json.dumps(self.meta, ensure_ascii=False, sort_keys=True)},'
        yield f'  "origin": {line(self.origin)},'
        if self.profile != "gptalk":
            yield f'  "profile": {line(self.profile)},'
        yield f'  "recorded_at": {line(self.recorded_at)},'
        yield f'  "redacted": {line(self.redacted)},'
        yield '  "interactions": ['
        for index, item in enumerate(self.interactions):
            request, response = item.request, item.response
            yield "    {"
            yield f'      "connection": {item.connection},'
            yield f'      "request": {line(_request_json(request))},'
            head = {
                "status": response.status,
                "headers": [list(h) for h in response.headers],
                "end": response.end,
            }
            yield f'      "response": {line(head)},'
            chunks = [line(_bytes_json(chunk.data, t=chunk.t)) for chunk in response.chunks]
            yield from block("chunks", chunks, last=False)
            events = [line(event._asdict()) for event in response.events]
            yield from block("events", events, last=True)
            yield "    }" + ("," if index < len(self.interactions) - 1 else "")
        yield "  ]"
        yield "}"

    def extend(self, other: Cassette, *, keep: int | None = None) -> Cassette:
        """The first ``keep`` interactions of this cassette (all by default),
        then ``other``'s, moved after them in time and connection numbers.

        How ``new_episodes`` recording adds to a cassette.
        """
        mine = self.interactions[:keep]
        times = [chunk.t for item in mine for chunk in item.response.chunks]
        times += [item.request.t for item in mine]
        offset = round(max(times, default=0.0) + 0.001, 6)
        base = max((item.connection for item in mine), default=0)
        moved = tuple(
            Interaction(
                item.connection + base,
                replace(item.request, t=round(item.request.t + offset, 6)),
                replace(
                    item.response,
                    chunks=tuple(
                        RecordedChunk(round(c.t + offset, 6), c.data) for c in item.response.chunks
                    ),
                ),
            )
            for item in other.interactions
        )
        return replace(self, interactions=mine + moved, redacted=self.redacted and other.redacted)

    # -- reading ------------------------------------------------------------------

    @classmethod
    def loads(cls, text: str | bytes, *, check: bool = True) -> Cassette:
        """Load and validate a cassette; ``check`` re-parses the chunks too.

        Raises :class:`CassetteError` naming the bad field.
        """
        try:
            if isinstance(text, bytes):
                # As json.loads does: UTF-8, or UTF-16/32 by their byte order marks.
                text = text.decode(json.detect_encoding(text), "surrogatepass")
            check_depth(text)
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CassetteError(f"cassette: invalid JSON ({exc})") from None
        cassette = cls(**from_json(raw))
        if check:
            cassette.check()
        return cassette

    def check(self) -> None:
        """Parse every response's chunks again; they must give the stored head
        and events (raises :class:`CassetteError`)."""
        for index, item in enumerate(self.interactions):
            where = f"interactions[{index}]"
            try:
                status, headers, _, events = parse_response(item.request.method, item.response.wire)
            except RemoteProtocolError as exc:
                raise CassetteError(
                    f"{where}.chunks: the recorded bytes do not parse as an HTTP/1.1 "
                    f"response ({exc})"
                ) from None
            if status != item.response.status or headers != item.response.headers:
                raise CassetteError(f"{where}.response: status or headers differ from the chunks")
            if tuple(events) != item.response.events:
                raise CassetteError(f"{where}.events: differ from the events the chunks give")


#: Levels of the format around a request body's JSON data (see MAX_DEPTH).
_BODY_DEPTH = 5


def _json_body_fits(body: bytes) -> bool:
    try:
        check_depth(body.decode("utf-8"), MAX_DEPTH - _BODY_DEPTH)
    except CassetteError:
        return False  # stored as text instead, so the cassette still loads
    return True


def _request_json(request: RecordedRequest) -> dict[str, Any]:
    parsed = request.json()
    if (
        parsed is not None
        and json.dumps(parsed).encode() == request.body
        and _json_body_fits(request.body)
    ):
        body: dict[str, Any] = {"encoding": "json", "data": parsed}
    else:
        body = _bytes_json(request.body)
    return {
        "t": request.t,
        "method": request.method,
        "target": request.target,
        "headers": [list(h) for h in request.headers],
        "body": body,
    }


def _bytes_json(data: bytes, **first: Any) -> dict[str, Any]:
    try:
        return {**first, "encoding": "utf-8", "data": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {**first, "encoding": "base64", "data": base64.b64encode(data).decode("ascii")}
