"""Redaction and lint for cassettes.

Redaction is on by default.  It finds the secrets a GPTalk session carries
(login tokens, stream tokens, fingerprints, bearer values, cookies and
set-cookies, proxy credentials, and whatever the caller lists) in requests
and responses (headers, targets, JSON bodies, SSE data) and replaces each with
a placeholder such as ``<login-token-1>.........``: the same secret always
gets the same placeholder, and the placeholder has the secret's length, so
Content-Length and chunk sizes in the recorded bytes stay true and a replay
still parses.  A replayed login hands the client the placeholder, which the
client then sends back: matching needs no knowledge of the real values.

:func:`lint` finds what still looks like a secret: long hex or base64 runs,
JWT shapes, bearer values that are not placeholders.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from urllib.parse import parse_qs, quote, urlsplit

from ._cassette import Cassette, Interaction, RecordedChunk, RecordedResponse, parse_response
from ._errors import RemoteProtocolError

__all__ = ["PLACEHOLDER", "lint", "redact"]

#: What a placeholder looks like (lint leaves these alone).
PLACEHOLDER = re.compile(r"<[a-z-]+-\d+>\.*|<[a-z]\d+>\.*")

_SECRET_HEADERS = {
    "cookie": "cookie",
    "set-cookie": "cookie",
    "proxy-authorization": "proxy-credentials",
}
_ABBREVIATIONS = {
    "login-token": "t",
    "stream-token": "s",
    "fingerprint": "f",
    "bearer": "b",
    "cookie": "c",
    "proxy-credentials": "p",
    "secret": "x",
}


def _placeholder(kind: str, number: int, length: int) -> str:
    for tag in (f"<{kind}-{number}>", f"<{_ABBREVIATIONS[kind]}{number}>"):
        if len(tag) <= length:
            return tag + "." * (length - len(tag))
    return "*" * length  # too short to say more


def _response_json(item: Interaction) -> object:
    try:
        _, _, body, _ = parse_response(item.request.method, item.response.wire)
        return json.loads(body)
    except (RemoteProtocolError, ValueError, UnicodeDecodeError):
        return None


def _find(cassette: Cassette, extra: Iterable[str]) -> dict[str, str]:
    """Every secret in the cassette, in order of first appearance -> its kind."""
    found: dict[str, str] = {}

    def add(value: object, kind: str) -> None:
        if isinstance(value, str) and value and not PLACEHOLDER.fullmatch(value):
            found.setdefault(value, kind)

    for item in cassette.interactions:
        request = item.request
        body = request.json()
        if isinstance(body, dict):
            add(body.get("fingerprint"), "fingerprint")
        for name, value in request.headers:
            lowered = name.lower()
            if lowered == "authorization":
                scheme, _, credential = value.partition(" ")
                add(credential.strip() or scheme, "bearer")
            elif lowered in _SECRET_HEADERS:
                add(_credential(lowered, value), _SECRET_HEADERS[lowered])
        for key, values in parse_qs(urlsplit(request.target).query).items():
            if key == "token":
                for value in values:
                    add(value, "stream-token")
        data = _response_json(item)
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            token = data["data"].get("token")
            add(token, "login-token" if item.kind == "login" else "stream-token")
        for name, value in item.response.headers:
            if name.lower() == "set-cookie":
                add(value.split(";", 1)[0].partition("=")[2], "cookie")
    for value in extra:
        add(value, "secret")
    return found


def _credential(header: str, value: str) -> str:
    if header == "proxy-authorization":
        return value.partition(" ")[2].strip() or value
    return value


def secret_spellings(secret: str) -> Iterator[str]:
    """How a secret may be spelled on the wire: as is, JSON-escaped (both with
    and without \\u escapes), and percent-encoded in a URL."""
    yield secret
    yield json.dumps(secret)[1:-1]
    yield json.dumps(secret, ensure_ascii=False)[1:-1]
    yield quote(secret, safe="")


_NUMBERED = re.compile(r"<([a-z-]+)-(\d+)>|<([a-z])(\d+)>")
_KINDS_BY_ABBREVIATION = {short: kind for kind, short in _ABBREVIATIONS.items()}


def _numbers_in_use(cassette: Cassette) -> dict[str, int]:
    # A cassette extended by a later recording keeps its placeholders; new
    # secrets are numbered after them (long and short forms alike), so no two
    # secrets share one.
    used: dict[str, int] = {}
    for match in _NUMBERED.finditer(cassette.dumps()):
        if match.group(1):
            kind, number = match.group(1), int(match.group(2))
        else:
            kind, number = _KINDS_BY_ABBREVIATION.get(match.group(3), ""), int(match.group(4))
        used[kind] = max(used.get(kind, 0), number)
    return used


def _table(found: dict[str, str], counters: dict[str, int]) -> list[tuple[str, str]]:
    pairs: dict[str, str] = {}
    for secret, kind in found.items():
        counters[kind] = counters.get(kind, 0) + 1
        for variant in secret_spellings(secret):
            pairs.setdefault(variant, _placeholder(kind, counters[kind], len(variant.encode())))
    # Longest first, so a secret inside a longer one does not break it up.
    return sorted(pairs.items(), key=lambda pair: -len(pair[0]))


def _apply_text(text: str, table: list[tuple[str, str]]) -> str:
    for secret, placeholder in table:
        if secret in text:
            text = text.replace(secret, _fit(placeholder, len(secret)))
    return text


def _fit(placeholder: str, length: int) -> str:
    # In text, lengths count characters; keep them equal there too.
    return (
        placeholder[:length]
        if len(placeholder) >= length
        else placeholder + "." * (length - len(placeholder))
    )


def _apply_bytes(data: bytes, table: list[tuple[str, str]]) -> bytes:
    for secret, placeholder in table:
        raw = secret.encode()
        if raw in data:
            data = data.replace(raw, placeholder.encode())
    return data


def redact(cassette: Cassette, secrets: Iterable[str] = ()) -> Cassette:
    """A copy of ``cassette`` with every secret replaced by its placeholder."""
    table = _table(_find(cassette, secrets), _numbers_in_use(cassette))
    items = []
    for item in cassette.interactions:
        request = item.request
        request = replace(
            request,
            target=_apply_text(request.target, table),
            headers=tuple((n, _apply_text(v, table)) for n, v in request.headers),
            body=_apply_bytes(request.body, table),
        )
        # Replace in the whole byte stream (a secret may straddle two reads),
        # then cut it again where the reads were: the lengths did not change.
        wire = _apply_bytes(item.response.wire, table)
        chunks, start = [], 0
        for chunk in item.response.chunks:
            chunks.append(RecordedChunk(chunk.t, wire[start : start + len(chunk.data)]))
            start += len(chunk.data)
        status, headers, _, events = parse_response(request.method, wire)
        response = RecordedResponse(
            status, headers, tuple(chunks), tuple(events), item.response.end
        )
        items.append(Interaction(item.connection, request, response))
    return replace(cassette, interactions=tuple(items), redacted=True)


# -- lint ---------------------------------------------------------------------------

_HEX = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{24,}(?![0-9A-Za-z])")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{32,}={0,2}")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
# A credential after the scheme names as they are written (RFC 9110 section
# 11.2, token68): any "Bearer <token>", and "Basic <token>" of at least 8
# characters (base64 of "user:pw"), so prose such as "basic idea" passes.
_BEARER = re.compile(r"\b(?:Bearer [A-Za-z0-9._~+/-]+=*|Basic [A-Za-z0-9+/]{8,}=*)")


def _suspicious(text: str) -> Iterator[str]:
    clean = PLACEHOLDER.sub(" ", text)
    for match in _HEX.finditer(clean):
        yield f"a hex run of {len(match.group())} characters"
    for match in _BASE64.finditer(clean):
        run = match.group()
        if (
            any(c.isdigit() for c in run)
            and any(c.isupper() for c in run)
            and any(c.islower() for c in run)
        ):
            yield f"a base64 run of {len(run)} characters"
    for _ in _JWT.finditer(clean):
        yield "a JWT"
    for _ in _BEARER.finditer(clean):
        yield "a bearer or basic credential"


def lint(cassette: Cassette) -> list[str]:
    """Where the cassette still holds something that looks like a secret."""
    findings: list[str] = []

    def scan(where: str, text: str) -> None:
        for what in _suspicious(text):
            findings.append(f"{where}: {what}")

    for index, item in enumerate(cassette.interactions):
        spot = f"interactions[{index}]"
        scan(f"{spot}.request.target", item.request.target)
        for number, (name, value) in enumerate(item.request.headers):
            scan(f"{spot}.request.headers[{number}] ({name})", value)
            secret_header = name.lower() in _SECRET_HEADERS or name.lower() == "authorization"
            if secret_header and not PLACEHOLDER.search(value):
                findings.append(
                    f"{spot}.request.headers[{number}] ({name}): an unredacted credential"
                )
        scan(f"{spot}.request.body", item.request.body.decode("utf-8", "replace"))
        for number, (name, value) in enumerate(item.response.headers):
            if name.lower() == "set-cookie" and not PLACEHOLDER.search(value):
                findings.append(f"{spot}.response.headers[{number}] (set-cookie): a cookie")
        # The whole stream at once: a secret may straddle two reads.
        scan(f"{spot}.chunks", item.response.wire.decode("utf-8", "replace"))
        for number, event in enumerate(item.response.events):
            scan(f"{spot}.events[{number}]", event.data)
    return findings
