"""Loading a cassette's JSON: every field checked, every refusal naming it.

The checks here are as strict as ``cassette.schema.json``; the text-level
ones (nesting depth, origins, methods, targets) are in ``_checks``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from .._errors import EXCERPT_LIMIT, escaped, excerpt
from ..sse._event import SSEEvent
from ._checks import is_method, is_request_target, is_status, nesting_problem, origin_problem
from ._profiles import PROFILES
from ._records import (
    ENDINGS,
    FORMAT_VERSION,
    MAX_DEPTH,
    MAX_TIME,
    CassetteError,
    Interaction,
    RecordedChunk,
    RecordedRequest,
    RecordedResponse,
)

__all__ = ["check_depth", "from_json"]


# -- validation -------------------------------------------------------------------
#
# As strict as gptalk_proto/cassette/cassette.schema.json, field for field (a test holds
# the two to each other), and every refusal names the field.


def check_depth(text: str, limit: int = MAX_DEPTH) -> None:
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
        # The key is the file's own text: escaped and cut, as any quotation.
        raise CassetteError(
            f"{where}.{escaped(extra[0], EXCERPT_LIMIT)}: not a field of the format"
        )


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
        raise CassetteError(f"{where}.encoding: expected one of {allowed}, got {excerpt(encoding)}")
    if "data" not in obj:
        raise CassetteError(f"{where}.data: missing")
    if encoding == "json" and json_ok:
        encoded: bytes = json.dumps(obj["data"]).encode()
        return encoded
    data: str = _field(obj, "data", str, where)
    if encoding == "utf-8":
        try:
            return data.encode("utf-8")
        except UnicodeEncodeError:
            # JSON's "\ud800" escape reads as a lone surrogate, which no
            # byte sequence is: the file is wrong, not the loader.
            raise CassetteError(f"{where}.data: a lone surrogate is no UTF-8 text") from None
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
    {
        "format_version",
        "generator",
        "meta",
        "origin",
        "profile",
        "recorded_at",
        "redacted",
        "interactions",
    }
)
_ITEM_FIELDS = frozenset({"connection", "request", "response", "chunks", "events"})
_REQUEST_FIELDS = frozenset({"t", "method", "target", "headers", "body"})
_RESPONSE_FIELDS = frozenset({"status", "headers", "end"})


def from_json(raw: Any) -> dict[str, Any]:
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
            raise CassetteError(f"{where}.request.method: {excerpt(method)} is not an HTTP method")
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
            raise CassetteError(
                f"{where}.response.end: expected one of {ENDINGS}, got {excerpt(end)}"
            )
        status = _field(resp, "status", int, f"{where}.response")
        if not is_status(status):
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
    # Optional (format 1 files written before profiles have none): gptalk.
    profile = _need(top.get("profile", "gptalk"), str, "cassette.profile")
    if profile not in PROFILES:
        known = ", ".join(sorted(PROFILES))
        raise CassetteError(f"cassette.profile: not a known profile (one of {known})")
    return {
        "interactions": tuple(items),
        "recorded_at": _field(top, "recorded_at", str, "cassette"),
        "origin": origin,
        "redacted": _field(top, "redacted", bool, "cassette"),
        "generator": _need(generator, str, "cassette.generator"),
        "format_version": version,
        "meta": _need(top.get("meta", {}), dict, "cassette.meta"),
        "profile": profile,
    }
