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
import binascii
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from .._errors import GPTalkError, RemoteProtocolError
from ..sse._event import SSEEvent
from ._checks import is_method, is_request_target, nesting_problem, origin_problem
from ._response import parse_response

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

FORMAT_VERSION = 1

#: How a recorded response ended: its body completed ("complete"), the
#: server closed the connection after it or in its middle ("closed"), or the
#: recorder stopped it at an event limit or idle timeout ("stopped").
ENDINGS = ("complete", "closed", "stopped")

#: The latest time offset a cassette may hold, in seconds since the recording
#: began: a week, far beyond any recording session.  A larger offset is a
#: corrupt or hostile file -- replayed as recorded it would wait that long,
#: and date arithmetic on it (the HAR export) overflows.
MAX_TIME = 7 * 24 * 3600.0

#: The deepest nesting of JSON arrays and objects a cassette file may have.
#: The format uses six levels (cassette, interactions, interaction, request,
#: body, data) plus a recorded JSON body's own few; Python's JSON parser
#: recurses once per level, so a file nested 100,000 deep must be refused
#: before it is parsed (a linear scan does it).
MAX_DEPTH = 64


class CassetteError(GPTalkError):
    """A cassette is malformed, newer than this version reads, or inconsistent.

    The message names the field (``interactions[2].chunks[5].data``).
    """


@dataclass(frozen=True)
class RecordedChunk:
    """Bytes from one read (or write), ``t`` seconds after recording began."""

    t: float
    data: bytes


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the client wrote it."""

    t: float
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def json(self) -> Any:
        """The body as JSON (None when it is not JSON), parsed once."""
        return self._json

    @cached_property
    def _json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except (ValueError, UnicodeDecodeError):
            return None


@dataclass(frozen=True)
class RecordedResponse:
    """A response as it arrived: the raw chunks, and what they say."""

    status: int
    headers: tuple[tuple[str, str], ...]
    chunks: tuple[RecordedChunk, ...]
    events: tuple[SSEEvent, ...] = ()
    end: str = "complete"

    @property
    def wire(self) -> bytes:
        return b"".join(chunk.data for chunk in self.chunks)


@dataclass(frozen=True)
class Interaction:
    """One request and its response, on connection number ``connection``."""

    connection: int
    request: RecordedRequest
    response: RecordedResponse

    @property
    def kind(self) -> str:
        """``login``, ``text``, ``stream`` or ``other``, from the path."""
        path = self.request.target.split("?", 1)[0]
        return {
            "/api/chatgpt/user/login": "login",
            "/api/chatgpt/chatapi/text": "text",
            "/api/chatgpt/chatapi/stream": "stream",
        }.get(path, "other")


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
            _check_depth(text)
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CassetteError(f"cassette: invalid JSON ({exc})") from None
        cassette = _from_json(raw)
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
        _check_depth(body.decode("utf-8"), MAX_DEPTH - _BODY_DEPTH)
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


# -- validation -------------------------------------------------------------------
#
# As strict as gptalk_proto/cassette/cassette.schema.json, field for field (a test holds
# the two to each other), and every refusal names the field.


def _check_depth(text: str, limit: int = MAX_DEPTH) -> None:
    problem = nesting_problem(text, limit)
    if problem is not None:
        raise CassetteError(f"cassette: {problem}")


def _origin(value: str, where: str) -> str:
    problem = origin_problem(value)
    if problem is not None:
        raise CassetteError(f"{where}: {problem}")
    return value


def _need(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise CassetteError(f"{where}: expected {names}, got {type(value).__name__}")
    return value


def _field(obj: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    if name not in obj:
        raise CassetteError(f"{where}.{name}: missing")
    return _need(obj[name], kind, f"{where}.{name}")


def _only(obj: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise CassetteError(f"{where}.{extra[0]}: not a field of the format")


def _time(obj: dict[str, Any], where: str, *, after: float = 0.0, before: str = "") -> float:
    """A time offset: finite, not negative, at most :data:`MAX_TIME`, and not
    earlier than ``after`` (the step ``before`` names)."""
    value = _field(obj, "t", (int, float), where)
    # Compared before float(): an integer of 400 digits does not fit one.
    if isinstance(value, float) and not math.isfinite(value):
        raise CassetteError(f"{where}.t: a time offset must be a finite number")
    if value < 0:
        raise CassetteError(f"{where}.t: a time offset cannot be negative")
    if value > MAX_TIME:
        raise CassetteError(f"{where}.t: past the limit of {MAX_TIME:g} s after the start")
    if value < after:
        raise CassetteError(f"{where}.t: {value:g} s is earlier than {before} ({after:g} s)")
    return float(value)


def _headers(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    out = []
    for index, pair in enumerate(_need(value, list, where)):
        item = f"{where}[{index}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise CassetteError(f"{item}: expected a [name, value] pair")
        out.append((_need(pair[0], str, item), _need(pair[1], str, item)))
    return tuple(out)


_BODY_FIELDS = frozenset({"encoding", "data"})
_CHUNK_FIELDS = frozenset({"t", "encoding", "data"})


def _bytes(obj: dict[str, Any], where: str, *, json_ok: bool) -> bytes:
    encoding = _field(obj, "encoding", str, where)
    known = ("utf-8", "base64", "json") if json_ok else ("utf-8", "base64")
    if encoding not in known:
        allowed = ", ".join(repr(name) for name in known)
        raise CassetteError(f"{where}.encoding: expected one of {allowed}, got {encoding!r}")
    if "data" not in obj:
        raise CassetteError(f"{where}.data: missing")
    if encoding == "json" and json_ok:
        encoded: bytes = json.dumps(obj["data"]).encode()
        return encoded
    data: str = _field(obj, "data", str, where)
    if encoding == "utf-8":
        return data.encode("utf-8")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise CassetteError(f"{where}.data: invalid base64") from None


def _event(event: Any, where: str) -> SSEEvent:
    _need(event, dict, where)
    _only(event, frozenset({"event", "data", "id", "retry"}), where)
    retry = event.get("retry", _MISSING)
    if retry is _MISSING:
        raise CassetteError(f"{where}.retry: missing")
    if retry is not None and _need(retry, int, f"{where}.retry") < 0:
        raise CassetteError(f"{where}.retry: cannot be negative")
    kind = _field(event, "event", str, where)
    if "\r" in kind or "\n" in kind:
        raise CassetteError(f"{where}.event: a parser never gives CR or LF here")
    ident = _field(event, "id", str, where)
    if "\r" in ident or "\n" in ident or "\x00" in ident:
        raise CassetteError(f"{where}.id: a parser never gives CR, LF or NUL here")
    return SSEEvent(kind, _field(event, "data", str, where), ident, retry)


_MISSING = object()
_TOP_FIELDS = frozenset(
    {"format_version", "generator", "meta", "origin", "recorded_at", "redacted", "interactions"}
)
_ITEM_FIELDS = frozenset({"connection", "request", "response", "chunks", "events"})
_REQUEST_FIELDS = frozenset({"t", "method", "target", "headers", "body"})
_RESPONSE_FIELDS = frozenset({"status", "headers", "end"})


def _from_json(raw: Any) -> Cassette:
    top = _need(raw, dict, "cassette")
    version = _field(top, "format_version", int, "cassette")
    if version > FORMAT_VERSION:
        raise CassetteError(
            f"cassette.format_version: {version} is newer than this gptalk-proto reads "
            f"({FORMAT_VERSION}); upgrade gptalk-proto"
        )
    if version < 1:
        raise CassetteError(f"cassette.format_version: {version} is not a version")
    _only(top, _TOP_FIELDS, "cassette")
    origin = _origin(_field(top, "origin", str, "cassette"), "cassette.origin")
    items = []
    for index, item in enumerate(_field(top, "interactions", list, "cassette")):
        where = f"interactions[{index}]"
        _need(item, dict, where)
        _only(item, _ITEM_FIELDS, where)
        connection = _field(item, "connection", int, where)
        if connection < 1:
            raise CassetteError(f"{where}.connection: connections are numbered from 1")
        req = _field(item, "request", dict, where)
        _only(req, _REQUEST_FIELDS, f"{where}.request")
        body = _field(req, "body", dict, f"{where}.request")
        _only(body, _BODY_FIELDS, f"{where}.request.body")
        method = _field(req, "method", str, f"{where}.request")
        if not is_method(method):
            raise CassetteError(f"{where}.request.method: {method!r} is not an HTTP method")
        target = _field(req, "target", str, f"{where}.request")
        if not is_request_target(target):
            raise CassetteError(
                f"{where}.request.target: a request-target is visible ASCII, without spaces"
            )
        request = RecordedRequest(
            t=_time(req, f"{where}.request"),
            method=method,
            target=target,
            headers=_headers(
                _field(req, "headers", list, f"{where}.request"), f"{where}.request.headers"
            ),
            body=_bytes(body, f"{where}.request.body", json_ok=True),
        )
        resp = _field(item, "response", dict, where)
        _only(resp, _RESPONSE_FIELDS, f"{where}.response")
        end = _field(resp, "end", str, f"{where}.response")
        if end not in ENDINGS:
            raise CassetteError(f"{where}.response.end: expected one of {ENDINGS}, got {end!r}")
        status = _field(resp, "status", int, f"{where}.response")
        if not 100 <= status <= 599:
            raise CassetteError(f"{where}.response.status: {status} is not an HTTP status")
        chunks: list[RecordedChunk] = []
        # Within an exchange time runs forward: the request, then each read.
        last, last_name = request.t, "the request"
        for number, chunk in enumerate(_field(item, "chunks", list, where)):
            spot = f"{where}.chunks[{number}]"
            _need(chunk, dict, spot)
            _only(chunk, _CHUNK_FIELDS, spot)
            t = _time(chunk, spot, after=last, before=last_name)
            last, last_name = t, "the chunk before it"
            chunks.append(RecordedChunk(t, _bytes(chunk, spot, json_ok=False)))
        events = [
            _event(event, f"{where}.events[{number}]")
            for number, event in enumerate(_field(item, "events", list, where))
        ]
        items.append(
            Interaction(
                connection=connection,
                request=request,
                response=RecordedResponse(
                    status=status,
                    headers=_headers(
                        _field(resp, "headers", list, f"{where}.response"),
                        f"{where}.response.headers",
                    ),
                    chunks=tuple(chunks),
                    events=tuple(events),
                    end=end,
                ),
            )
        )
    generator = top.get("generator", "")
    return Cassette(
        interactions=tuple(items),
        recorded_at=_field(top, "recorded_at", str, "cassette"),
        origin=origin,
        redacted=_field(top, "redacted", bool, "cassette"),
        generator=_need(generator, str, "cassette.generator"),
        format_version=version,
        meta=_need(top.get("meta", {}), dict, "cassette.meta"),
    )
