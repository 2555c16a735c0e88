"""Redaction and lint: no secret of a recorded session survives into a cassette,
its HAR export, lint's report, an error message or a repr."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import anyio
import pytest

import gptalk_proto as g
from gptalk_proto._cassette import parse_response
from gptalk_proto._redact import PLACEHOLDER
from gptalk_transports import AsyncClient, Client, Origin, RetryPolicy
from gptalk_transports._anyio_backend import AnyioBackend
from gptalk_transports._cassettes import (
    AsyncRecordingConnector,
    Recording,
    SyncRecordingConnector,
    load_cassette,
    save_cassette,
)
from gptalk_transports._connector import AsyncConnector, SyncConnector
from gptalk_transports._refserver import serve_in_background, serve_in_thread
from gptalk_transports._session import record_session, replay_session

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
SHIPPED = sorted(p for p in CASSETTES.glob("*.json") if p.name != "cassette.schema.json")
GPTALK = Path(sys.executable).with_name("gptalk")

Secrets = dict[str, set[str]]


# -- helpers ------------------------------------------------------------------------------


def _response_data(item: g.Interaction) -> dict[str, Any] | None:
    try:
        _, _, body, _ = parse_response(item.request.method, item.response.wire)
        envelope = json.loads(body)
    except (g.RemoteProtocolError, ValueError):
        return None
    data = envelope.get("data") if isinstance(envelope, dict) else None
    return data if isinstance(data, dict) else None


def secrets_in(cassette: g.Cassette) -> Secrets:
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


def texts_of(cassette: g.Cassette) -> list[str]:
    """Everything a cassette says, in every form it is shown."""
    out = [cassette.dumps(), json.dumps(g.to_har(cassette), ensure_ascii=False)]
    out.append(json.dumps(g.to_har(cassette)))
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


def record(prompts: list[str], **kwargs: Any) -> tuple[g.Cassette, list[Any]]:
    return anyio.run(functools.partial(record_session, prompts, **kwargs))


def response_from(method: str, chunks: list[tuple[float, bytes]], end: str = "complete") -> Any:
    """A RecordedResponse whose head and events are what its chunks say."""
    recorded = tuple(g.RecordedChunk(t, data) for t, data in chunks)
    status, headers, _, events = parse_response(method, b"".join(data for _, data in chunks))
    return g.RecordedResponse(status, headers, recorded, tuple(events), end)


def json_response(payload: dict[str, Any], *extra_headers: str) -> bytes:
    body = json.dumps(payload).encode()
    head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    head += "".join(f"{line}\r\n" for line in extra_headers)
    return (head + f"content-length: {len(body)}\r\n\r\n").encode() + body


def sse_response(*data: str) -> bytes:
    body = "".join(f"data: {line}\n\n" for line in data).encode()
    head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    return (head + f"content-length: {len(body)}\r\n\r\n").encode() + body


def placeholder_map(raw: g.Cassette, redacted: g.Cassette) -> dict[str, set[str]]:
    """secret -> the placeholders standing where it stood (the two cassettes
    have the same shape: redaction keeps every length)."""
    found = secrets_in(raw)
    table: dict[str, set[str]] = {}

    def note(before: str, after: str) -> None:
        for secret in every(found):
            start = before.find(secret)
            while start >= 0:
                table.setdefault(secret, set()).add(after[start : start + len(secret)])
                start = before.find(secret, start + 1)

    for old, new in zip(raw.interactions, redacted.interactions, strict=True):
        note(old.request.target, new.request.target)
        for (_, before), (_, after) in zip(old.request.headers, new.request.headers, strict=True):
            note(before, after)
        note(old.request.body.decode("latin-1"), new.request.body.decode("latin-1"))
        note(old.response.wire.decode("latin-1"), new.response.wire.decode("latin-1"))
    return table


# -- a recorded session, redacted ----------------------------------------------------------


def test_recorded_session_is_redacted_everywhere() -> None:
    prompts = [f"Chat number {n}" for n in range(1, 7)]
    raw, results = record(prompts, redact=False)
    assert not raw.redacted
    assert [r.error for r in results] == [None] * 6
    found = secrets_in(raw)
    # Six chats: a token serves five, so two logins; six streams.
    assert len(found["login-token"]) == 2
    assert len(found["fingerprint"]) == 2
    assert len(found["stream-token"]) == 6
    assert found["bearer"] == found["login-token"]
    secrets = every(found)
    assert len(secrets) == 10
    assert g.lint(raw), "lint finds the secrets of an unredacted cassette"

    redacted = g.redact(raw)
    assert redacted.redacted
    assert_absent(secrets, texts_of(redacted))
    assert g.lint(redacted) == []

    # The same secret always gets the same placeholder, of the secret's length;
    # different secrets get different ones.
    table = placeholder_map(raw, redacted)
    assert set(table) == secrets
    chosen: dict[str, str] = {}
    for secret, placeholders in table.items():
        assert len(placeholders) == 1, placeholders
        (placeholder,) = placeholders
        assert len(placeholder) == len(secret)
        assert PLACEHOLDER.fullmatch(placeholder), placeholder
        chosen[secret] = placeholder
    assert len(set(chosen.values())) == len(chosen)
    for kind, values in found.items():
        if kind != "bearer":
            for value in values:
                assert chosen[value].startswith(f"<{kind}-")

    # Nothing else changed length: chunk by chunk, header by header.
    for old, new in zip(raw.interactions, redacted.interactions, strict=True):
        assert [len(c.data) for c in old.response.chunks] == [
            len(c.data) for c in new.response.chunks
        ]
        assert [c.t for c in old.response.chunks] == [c.t for c in new.response.chunks]
        assert len(old.request.body) == len(new.request.body)
        assert [len(v) for _, v in old.request.headers] == [len(v) for _, v in new.request.headers]
        assert len(old.response.events) == len(new.response.events)

    # It is a valid cassette and replays to the same texts.
    assert g.Cassette.loads(redacted.dumps()) == redacted
    replayed = anyio.run(replay_session, redacted)
    assert [(r.prompt, r.text, r.error) for r in replayed] == [
        (r.prompt, r.text, r.error) for r in results
    ]
    # Redacting again changes nothing.
    assert g.redact(redacted) == redacted


def test_record_session_redacts_by_default() -> None:
    cassette, results = record(["Hello there"])
    assert cassette.redacted
    assert g.lint(cassette) == []
    assert results[0].text == g.expected_reply("Hello there")


def test_user_secrets_are_redacted_in_requests_and_replies() -> None:
    plain = "hunter2-secret"
    tricky = 'pässwörd"42'  # a non-ASCII character and a quote: JSON escapes it
    prompt = f"my pw {plain} and {tricky}"
    cassette, results = record([prompt], secrets=(plain, tricky))
    # The reply echoed the prompt: the secrets crossed the wire both ways.
    assert plain in results[0].text
    assert tricky in results[0].text
    assert cassette.redacted
    assert_absent({plain, tricky}, texts_of(cassette))
    assert g.lint(cassette) == []
    (text_step,) = [item for item in cassette.interactions if item.kind == "text"]
    content = text_step.request.json()["content"]
    assert content.startswith("my pw <secret-")
    assert "<secret-1>" in content
    assert "<secret-2>" in content
    # The request body is ASCII JSON (the tricky secret was there as
    # p\u00e4ssw\u00f6rd\"42): the placeholders kept its length.
    headers = dict(text_step.request.headers)
    assert int(headers["content-length"]) == len(text_step.request.body)
    assert text_step.request.body.isascii()
    # The redacted cassette still replays, the placeholders standing in.
    replayed = anyio.run(replay_session, cassette)
    assert replayed[0].prompt == content
    assert replayed[0].error is None
    assert "<secret-1>" in replayed[0].text
    assert_absent({plain, tricky}, [replayed[0].text])


# -- cookies, set-cookies, proxy credentials (built by hand) ----------------------------------

SESSION = "9f8e7d6c5b4a39281716a5b4c3d2e1f0"
PROXY_CREDENTIALS = "dXNlcjpodW50ZXIy"  # user:hunter2
LOGIN_TOKEN = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
FINGERPRINT = "00112233445566778899aabbccddeeff"


def cookie_cassette() -> g.Cassette:
    login_body = json.dumps({"fingerprint": FINGERPRINT, "platform": "fingerprint"}).encode()
    login = g.RecordedRequest(
        t=0.0,
        method="POST",
        target="/api/chatgpt/user/login",
        headers=(
            ("host", "example"),
            ("content-type", "application/json"),
            ("proxy-authorization", f"Basic {PROXY_CREDENTIALS}"),
            ("content-length", str(len(login_body))),
        ),
        body=login_body,
    )
    login_reply = json_response(
        {"code": 0, "msg": "ok", "data": {"token": LOGIN_TOKEN, "expires_at": 2000000000}},
        f"set-cookie: sid={SESSION}; Path=/; HttpOnly",
    )
    text = g.RecordedRequest(
        t=0.2,
        method="GET",
        target="/api/other",
        headers=(
            ("host", "example"),
            ("cookie", f"sid={SESSION}; theme=dark"),
            ("proxy-authorization", f"Basic {PROXY_CREDENTIALS}"),
            ("authorization", f"Bearer {LOGIN_TOKEN}"),
        ),
        body=b"",
    )
    return g.Cassette(
        interactions=(
            g.Interaction(1, login, response_from("POST", [(0.1, login_reply)])),
            g.Interaction(1, text, response_from("GET", [(0.3, json_response({"code": 0}))])),
        ),
        recorded_at="2024-01-02T03:04:05Z",
        origin="http://example",
        redacted=False,
    )


def test_cookies_and_proxy_credentials_are_redacted() -> None:
    raw = cookie_cassette()
    assert g.Cassette.loads(raw.dumps()) == raw
    findings = g.lint(raw)
    joined = "\n".join(findings)
    assert "interactions[0].request.headers[2] (proxy-authorization): an unredacted credential" in (
        joined
    )
    assert "interactions[0].request.headers[2] (proxy-authorization): a bearer or basic" in joined
    assert "interactions[1].request.headers[1] (cookie): an unredacted credential" in joined
    assert "interactions[0].chunks: a hex run of 32 characters" in joined  # the set-cookie
    assert "interactions[1].request.headers[3] (authorization): a bearer" in joined

    redacted = g.redact(raw)
    assert g.lint(redacted) == []
    assert_absent(
        {SESSION, PROXY_CREDENTIALS, LOGIN_TOKEN, FINGERPRINT, f"sid={SESSION}; theme=dark"},
        texts_of(redacted),
    )
    login, other = redacted.interactions
    headers = dict(login.request.headers)
    assert headers["proxy-authorization"].startswith("Basic <")
    assert len(headers["proxy-authorization"]) == len(f"Basic {PROXY_CREDENTIALS}")
    (set_cookie,) = [v for n, v in login.response.headers if n == "set-cookie"]
    assert set_cookie.startswith("sid=<")
    assert set_cookie.endswith("; Path=/; HttpOnly")
    assert len(set_cookie) == len(f"sid={SESSION}; Path=/; HttpOnly")
    cookie = dict(other.request.headers)["cookie"]
    assert PLACEHOLDER.fullmatch(cookie)
    assert len(cookie) == len(f"sid={SESSION}; theme=dark")
    # The proxy credentials got one placeholder, wherever they were.
    assert dict(other.request.headers)["proxy-authorization"] == headers["proxy-authorization"]
    assert [len(c.data) for c in login.response.chunks] == [
        len(c.data) for c in raw.interactions[0].response.chunks
    ]
    assert g.Cassette.loads(redacted.dumps()) == redacted


def test_a_secret_straddling_two_reads_is_redacted() -> None:
    reply = json_response(
        {"code": 0, "msg": "ok", "data": {"token": LOGIN_TOKEN, "expires_at": 2000000000}}
    )
    cut = reply.index(LOGIN_TOKEN.encode()) + 13
    body = json.dumps({"fingerprint": FINGERPRINT, "platform": "fingerprint"}).encode()
    request = g.RecordedRequest(
        0.0, "POST", "/api/chatgpt/user/login", (("host", "example"),), body
    )
    raw = g.Cassette(
        interactions=(
            g.Interaction(
                1, request, response_from("POST", [(0.1, reply[:cut]), (0.2, reply[cut:])])
            ),
        ),
        recorded_at="2024-01-02T03:04:05Z",
        origin="http://example",
        redacted=False,
    )
    assert any("chunks: a hex run" in finding for finding in g.lint(raw))
    redacted = g.redact(raw)
    first, second = redacted.interactions[0].response.chunks
    assert (len(first.data), len(second.data)) == (cut, len(reply) - cut)
    assert (first.t, second.t) == (0.1, 0.2)
    assert LOGIN_TOKEN[:13].encode() not in first.data
    assert LOGIN_TOKEN[13:].encode() not in second.data
    wire = redacted.interactions[0].response.wire
    assert b'"token": "<login-token-1>' in wire
    assert len(wire) == len(reply)
    assert_absent({LOGIN_TOKEN, FINGERPRINT}, texts_of(redacted))
    assert g.lint(redacted) == []
    assert g.Cassette.loads(redacted.dumps()) == redacted


def _echo_cassette(secret: str, t: float) -> g.Cassette:
    body = json.dumps({"content": f"say {secret}"}).encode()
    request = g.RecordedRequest(t, "POST", "/api/echo", (("host", "example"),), body)
    reply = json_response({"code": 0, "echo": secret})
    return g.Cassette(
        interactions=(g.Interaction(1, request, response_from("POST", [(t + 0.1, reply)])),),
        recorded_at="2024-01-02T03:04:05Z",
        origin="http://example",
        redacted=False,
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [("abcdefgh12345", "zyxwvuts98765"), ("abc12345", "zzz98765")],
    ids=["long-placeholders", "short-placeholders"],
)
def test_an_extended_cassette_keeps_secrets_apart(old: str, new: str) -> None:
    # new_episodes: a redacted cassette, extended by a new recording, is
    # redacted again; the new secret must not take the old one's placeholder.
    kept = g.redact(_echo_cassette(old, 0.0), [old])
    joined = g.redact(kept.extend(_echo_cassette(new, 0.0)), [new])
    first, second = (item.request.json()["content"] for item in joined.interactions)
    assert_absent({old, new}, texts_of(joined))
    assert first == kept.interactions[0].request.json()["content"]
    assert len(first) == len(second)
    assert first != second, "two different secrets got the same placeholder"


# -- lint ---------------------------------------------------------------------------------

HEX = "3f6c0e1d9a8b7c6d5e4f30211203f4e5"
B64 = "Zm9vYmFyQmF6UXV4MTIzNDU2Nzg5MGFiY2RlZg"
JWT = (
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def _plant_header(cassette: g.Cassette, step: int, name: str, value: str) -> g.Cassette:
    items = list(cassette.interactions)
    request = items[step].request
    items[step] = replace(
        items[step], request=replace(request, headers=(*request.headers, (name, value)))
    )
    return replace(cassette, interactions=tuple(items))


def _plant_target(cassette: g.Cassette, step: int, target: str) -> g.Cassette:
    items = list(cassette.interactions)
    items[step] = replace(items[step], request=replace(items[step].request, target=target))
    return replace(cassette, interactions=tuple(items))


def _plant_body(cassette: g.Cassette, step: int, content: str) -> g.Cassette:
    items = list(cassette.interactions)
    request = items[step].request
    body = {**request.json(), "content": content}
    items[step] = replace(items[step], request=replace(request, body=json.dumps(body).encode()))
    return replace(cassette, interactions=tuple(items))


def _plant_stream(cassette: g.Cassette, step: int, content: str) -> g.Cassette:
    items = list(cassette.interactions)
    data = json.dumps({"content": content})
    wire = sse_response(json.dumps({"content": "Hi "}), data, "[DONE]")
    items[step] = replace(items[step], response=response_from("GET", [(1.0, wire)]))
    return replace(cassette, interactions=tuple(items))


def _plant_response_header(cassette: g.Cassette, step: int, line: str) -> g.Cassette:
    items = list(cassette.interactions)
    wire = json_response({"code": 0, "msg": "ok", "data": {"token": "x"}}, line)
    items[step] = replace(items[step], response=response_from("POST", [(1.0, wire)]))
    return replace(cassette, interactions=tuple(items))


PLANTS: dict[str, tuple[Callable[[g.Cassette], g.Cassette], str]] = {
    "hex-in-header": (
        lambda c: _plant_header(c, 0, "x-trace", HEX),
        "interactions[0].request.headers[10] (x-trace): a hex run of 32 characters",
    ),
    "hex-in-target": (
        lambda c: _plant_target(c, 2, f"/api/chatgpt/chatapi/stream?token={HEX}"),
        "interactions[2].request.target: a hex run of 32 characters",
    ),
    "hex-in-sse-data": (
        lambda c: _plant_stream(c, 2, f"the key is {HEX}"),
        "interactions[2].events[1]: a hex run of 32 characters",
    ),
    "base64-in-body": (
        lambda c: _plant_body(c, 1, f"here: {B64}"),
        f"interactions[1].request.body: a base64 run of {len(B64)} characters",
    ),
    "base64-in-header": (
        lambda c: _plant_header(c, 1, "x-api-key", B64),
        f"interactions[1].request.headers[11] (x-api-key): a base64 run of {len(B64)}",
    ),
    "base64-in-sse-data": (
        lambda c: _plant_stream(c, 2, B64),
        f"interactions[2].chunks: a base64 run of {len(B64)} characters",
    ),
    "jwt-in-body": (
        lambda c: _plant_body(c, 1, JWT),
        "interactions[1].request.body: a JWT",
    ),
    "jwt-in-target": (
        lambda c: _plant_target(c, 2, f"/api/chatgpt/chatapi/stream?token={JWT}"),
        "interactions[2].request.target: a JWT",
    ),
    "jwt-in-sse-data": (
        lambda c: _plant_stream(c, 2, f"token {JWT} ok"),
        "interactions[2].events[1]: a JWT",
    ),
    "bearer-in-header": (
        lambda c: _plant_header(c, 2, "authorization", "Bearer abc"),
        "interactions[2].request.headers[8] (authorization): a bearer or basic credential",
    ),
    "bearer-in-body": (
        lambda c: _plant_body(c, 1, "send Bearer abc please"),
        "interactions[1].request.body: a bearer or basic credential",
    ),
    "bearer-in-sse-data": (
        lambda c: _plant_stream(c, 2, "use Bearer abc"),
        "interactions[2].events[1]: a bearer or basic credential",
    ),
    "hex-in-response-header": (
        lambda c: _plant_response_header(c, 0, f"x-session: {HEX}"),
        "interactions[0].chunks: a hex run of 32 characters",
    ),
}


@pytest.mark.parametrize("plant", list(PLANTS))
def test_lint_flags_what_looks_like_a_secret(plant: str) -> None:
    base = load_cassette(CASSETTES / "plain-chat.json")
    assert g.lint(base) == []
    make, expected = PLANTS[plant]
    findings = g.lint(make(base))
    assert any(finding.startswith(expected) for finding in findings), findings


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_lint_is_clean_on_every_shipped_cassette(path: Path) -> None:
    assert g.lint(load_cassette(path)) == []


def test_lint_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(GPTALK), "cassette", "lint", *map(str, SHIPPED)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for path in SHIPPED:
        assert f"{path}: no secrets found" in done.stdout
    planted = tmp_path / "planted.json"
    save_cassette(planted, PLANTS["hex-in-header"][0](load_cassette(CASSETTES / "plain-chat.json")))
    done = subprocess.run(
        [str(GPTALK), "cassette", "lint", str(planted)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "(x-trace): a hex run of 32 characters" in done.stdout
    assert HEX not in done.stdout + done.stderr


# -- issue 5: secrets never reach errors, reprs or reports ------------------------------------

FAULTS = {
    "503-forever": (("status=503@text",), g.HTTPStatusError),
    "invalid-twice": (("envelope=invalid@text#1-2",), g.AuthInvalid),
    "cut-stream": (("cut=3",), g.StreamInterrupted),
}


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]


def _error_texts(error: BaseException) -> list[str]:
    texts = ["".join(traceback.format_exception(error))]
    for link in _chain(error):
        texts += [str(link), repr(link), repr(link.args)]
        texts += [repr(value) for value in vars(link).values()]
    return texts


async def _faulted_async(faults: tuple[str, ...]) -> tuple[g.Cassette, list[str], list[Any]]:
    texts: list[str] = []
    errors: list[Any] = []
    async with serve_in_background(faults=faults) as url:
        backend = AnyioBackend()
        recording = Recording(url)
        connector = AsyncRecordingConnector(AsyncConnector(backend, Origin.parse(url)), recording)
        async with AsyncClient(url, connector=connector, retry=RetryPolicy(backoff=0.0)) as client:
            for prompt in ("First prompt", "Second prompt"):
                try:
                    await client.chat(prompt)
                except g.GPTalkError as error:
                    errors.append(error)
                    texts += _error_texts(error)
            texts += [repr(client), str(client), repr(client.credentials)]
            texts.append(repr(client.connector))
            texts += _request_reprs(client.credentials)
    return recording.cassette(redact=False), texts, errors


def _faulted_blocking(faults: tuple[str, ...]) -> tuple[g.Cassette, list[str], list[Any]]:
    texts: list[str] = []
    errors: list[Any] = []
    with serve_in_thread(faults=faults) as url:
        recording = Recording(url)
        connector = SyncRecordingConnector(SyncConnector(Origin.parse(url)), recording)
        with Client(url, connector=connector, retry=RetryPolicy(backoff=0.0)) as client:
            for prompt in ("First prompt", "Second prompt"):
                try:
                    client.chat(prompt)
                except g.GPTalkError as error:
                    errors.append(error)
                    texts += _error_texts(error)
            texts += [repr(client), str(client), repr(client.credentials)]
            texts += _request_reprs(client.credentials)
    return recording.cassette(redact=False), texts, errors


def _request_reprs(credentials: g.Credentials) -> list[str]:
    """The reprs of the requests a chat on these credentials makes (a text
    request with the bearer token when one is held, a login otherwise)."""
    texts = []
    chat = g.Chat("Third prompt", credentials=credentials, fingerprint="ab" * 16)
    assert chat.next_event() is g.SEND_REQUEST
    request = chat.next_request(now=time.time())
    texts += [repr(request), str(request), repr(chat.request)]
    fresh = g.Chat("Fourth prompt", credentials=g.Credentials(), fingerprint="cd" * 16)
    fresh.next_event()
    login = fresh.next_request(now=time.time())
    assert login.kind == "login"
    assert "cd" * 16 not in repr(login)
    texts.append(repr(login))
    return texts


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("kind", ["async", "blocking"])
def test_secrets_stay_out_of_errors_reprs_and_reports(
    kind: str, fault: str, no_leaks: None
) -> None:
    faults, expected = FAULTS[fault]
    if kind == "async":
        raw, texts, errors = anyio.run(_faulted_async, faults)
    else:
        raw, texts, errors = _faulted_blocking(faults)
    assert errors, "the faulted session raised"
    assert type(errors[0]) is expected
    found = secrets_in(raw)
    secrets = every(found)
    assert found["login-token"]
    assert found["fingerprint"]
    if fault == "cut-stream":
        assert found["stream-token"]
    redacted = g.redact(raw)
    findings = g.lint(raw)
    assert findings, "lint sees the unredacted secrets"
    texts += findings
    texts += texts_of(redacted)
    texts.append(json.dumps(g.to_har(redacted), indent=1))
    assert g.lint(redacted) == []
    assert_absent(secrets, texts)
