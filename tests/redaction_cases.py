"""Helpers for the redaction tests (test_cassette_redaction, test_cassette_lint,
test_secrets_out_of_errors): finding a session's secrets independently of the
library, asserting none survives, and building recorded responses by hand."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_proto.cassette._response import parse_response

Secrets = dict[str, set[str]]


def _response_data(item: g.cassette.Interaction) -> dict[str, Any] | None:
    try:
        _, _, body, _ = parse_response(item.request.method, item.response.wire)
        envelope = json.loads(body)
    except (g.RemoteProtocolError, ValueError):
        return None
    data = envelope.get("data") if isinstance(envelope, dict) else None
    return data if isinstance(data, dict) else None


def secrets_in(cassette: g.cassette.Cassette) -> Secrets:
    """Every secret an unredacted GPTalk cassette holds, by kind (found here
    independently of the library's own search)."""
    found: Secrets = {
        "login-token": set(),
        "stream-token": set(),
        "fingerprint": set(),
        "bearer": set(),
    }
    for item in cassette.interactions:
        request = item.request
        body = request.json()
        if item.kind == "login" and isinstance(body, dict):
            found["fingerprint"].add(body["fingerprint"])
        for name, value in request.headers:
            if name.lower() == "authorization":
                found["bearer"].add(value.split(" ", 1)[1])
        for token in parse_qs(urlsplit(request.target).query).get("token", []):
            found["stream-token"].add(token)
        data = _response_data(item)
        if data is not None and isinstance(data.get("token"), str):
            kind = "login-token" if item.kind == "login" else "stream-token"
            found[kind].add(data["token"])
    return found


def every(secrets: Secrets) -> set[str]:
    return set().union(*secrets.values())


def spellings(secret: str) -> set[str]:
    """How a secret may be written: as is, JSON-escaped (with and without
    \\u escapes), percent-encoded, and each of those JSON-escaped once more (as
    a cassette or HAR file, JSON themselves, write them)."""
    once = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
    }
    twice = {json.dumps(s)[1:-1] for s in once} | {
        json.dumps(s, ensure_ascii=False)[1:-1] for s in once
    }
    return once | twice


def texts_of(cassette: g.cassette.Cassette) -> list[str]:
    """Everything a cassette says, in every form it is shown."""
    out = [cassette.dumps(), json.dumps(g.cassette.to_har(cassette), ensure_ascii=False)]
    out.append(json.dumps(g.cassette.to_har(cassette)))
    for item in cassette.interactions:
        out.append(item.request.target)
        out += [value for _, value in item.request.headers]
        out.append(item.request.body.decode("utf-8", "replace"))
        out.append(item.response.wire.decode("utf-8", "replace"))
        out += [value for _, value in item.response.headers]
        out += [event.data for event in item.response.events]
    return out


def assert_absent(secrets: set[str], texts: list[str]) -> None:
    assert secrets
    for secret in secrets:
        for spelling in spellings(secret):
            for text in texts:
                assert spelling not in text, f"a secret ({len(secret)} chars) leaked"


def response_from(method: str, chunks: list[tuple[float, bytes]], end: str = "complete") -> Any:
    """A RecordedResponse whose head and events are what its chunks say."""
    recorded = tuple(g.cassette.RecordedChunk(t, data) for t, data in chunks)
    status, headers, _, events = parse_response(method, b"".join(data for _, data in chunks))
    return g.cassette.RecordedResponse(status, headers, recorded, tuple(events), end)


def json_response(payload: dict[str, Any], *extra_headers: str) -> bytes:
    body = json.dumps(payload).encode()
    head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    head += "".join(f"{line}\r\n" for line in extra_headers)
    return (head + f"content-length: {len(body)}\r\n\r\n").encode() + body
