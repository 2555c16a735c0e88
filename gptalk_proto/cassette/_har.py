"""HAR 1.2 export of a cassette, so a browser's HAR viewer can open it.

Each interaction becomes an entry; the raw chunks (with their time offsets)
and the parsed SSE events ride along as the ``_chunks`` and ``_events``
extension fields HAR allows (custom fields start with an underscore).
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .._errors import RemoteProtocolError
from .._version import __version__
from ._format import Cassette
from ._profiles import Profile, profile_named
from ._response import parse_response

__all__ = ["to_har"]


def _when(recorded_at: str, offset: float) -> str:
    try:
        start = datetime.fromisoformat(recorded_at.replace("Z", "+00:00"))
    except ValueError:
        start = datetime(1970, 1, 1, tzinfo=timezone.utc)
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    try:
        moment = start + timedelta(seconds=offset)
    except OverflowError:
        # A recorded_at near year 9999 (the loader bounds the offsets, not
        # the free-form date): the start alone, rather than a crash.
        moment = start
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _content(data: bytes) -> dict[str, Any]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"text": base64.b64encode(data).decode("ascii"), "encoding": "base64"}


def _pairs(headers: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers]


def _site(origin: str) -> str:
    """``scheme://host[:port]`` of the service URL: its path, query (an API key,
    redacted or not) and user information are not where a request went."""
    try:
        parts = urlsplit(origin)
        scheme, netloc = parts.scheme.lower(), parts.netloc.rpartition("@")[2]
    except ValueError:
        scheme = netloc = ""
    if scheme not in ("http", "https") or not netloc:
        return "http://invalid"  # the loader refuses such an origin; stay well formed
    return f"{scheme}://{netloc}"


def to_har(cassette: Cassette, profile: Profile | None = None) -> dict[str, Any]:
    """The cassette as a HAR 1.2 ``log`` object (a JSON-ready dict).

    Each request's URL is the service's scheme and authority followed by the
    request target as sent (origin-form: the path and query the service saw).
    Each entry's ``_kind`` is its step's kind under ``profile`` (default:
    the cassette's own), which the log's ``_profile`` names.
    """
    profile = profile if profile is not None else profile_named(cassette.profile)
    entries = []
    site = _site(cassette.origin)
    for item in cassette.interactions:
        request, response = item.request, item.response
        try:
            _, _, body, _ = parse_response(request.method, response.wire)
        except RemoteProtocolError:
            body = b""
        mime = next((v for n, v in response.headers if n.lower() == "content-type"), "")
        first = response.chunks[0].t if response.chunks else request.t
        last = response.chunks[-1].t if response.chunks else request.t
        wait = max(first - request.t, 0.0) * 1000
        receive = max(last - first, 0.0) * 1000
        har_request: dict[str, Any] = {
            "method": request.method,
            "url": site + (request.target if request.target.startswith("/") else "/"),
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": _pairs(request.headers),
            "queryString": [
                {"name": k, "value": v} for k, v in parse_qsl(urlsplit(request.target).query)
            ],
            "headersSize": -1,
            "bodySize": len(request.body),
        }
        if request.body:
            ctype = next(
                (v for n, v in request.headers if n.lower() == "content-type"),
                "application/octet-stream",
            )
            har_request["postData"] = {"mimeType": ctype, **_content(request.body)}
        entries.append(
            {
                "startedDateTime": _when(cassette.recorded_at, request.t),
                "time": round(wait + receive, 3),
                "request": har_request,
                "response": {
                    "status": response.status,
                    "statusText": "",
                    "httpVersion": "HTTP/1.1",
                    "cookies": [],
                    "headers": _pairs(response.headers),
                    "content": {"size": len(body), "mimeType": mime, **_content(body)},
                    "redirectURL": "",
                    "headersSize": -1,
                    "bodySize": len(body),
                },
                "cache": {},
                "timings": {"send": 0, "wait": round(wait, 3), "receive": round(receive, 3)},
                "connection": str(item.connection),
                "_kind": profile.kind(urlsplit(request.target).path),
                "_end": response.end,
                "_chunks": [
                    {
                        "offset_ms": round((chunk.t - request.t) * 1000, 3),
                        "size": len(chunk.data),
                        **_content(chunk.data),
                    }
                    for chunk in response.chunks
                ],
                "_events": [event._asdict() for event in response.events],
            }
        )
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "gptalk-proto", "version": __version__},
            "pages": [],
            "entries": entries,
            "_profile": profile.name,
            "comment": f"recorded {cassette.recorded_at}"
            + (", redacted" if cassette.redacted else ""),
        }
    }
