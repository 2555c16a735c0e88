"""Redaction: no secret of a recorded or hand-built session survives into a cassette or its HAR."""

from __future__ import annotations

import functools
import json
from typing import Any

import anyio
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server
from gptalk_proto.cassette._redact import PLACEHOLDER
from gptalk_transports._session import record_session, replay_session

from .redaction_cases import (
    assert_absent,
    every,
    json_response,
    response_from,
    secrets_in,
    texts_of,
)

# -- helpers ------------------------------------------------------------------------------


def record(prompts: list[str], **kwargs: Any) -> tuple[g.cassette.Cassette, list[Any]]:
    return anyio.run(functools.partial(record_session, prompts, **kwargs))


def placeholder_map(raw: g.cassette.Cassette, redacted: g.cassette.Cassette) -> dict[str, set[str]]:
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
    assert g.cassette.lint(raw), "lint finds the secrets of an unredacted cassette"

    redacted = g.cassette.redact(raw)
    assert redacted.redacted
    assert_absent(secrets, texts_of(redacted))
    assert g.cassette.lint(redacted) == []

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
    assert g.cassette.Cassette.loads(redacted.dumps()) == redacted
    replayed = anyio.run(replay_session, redacted)
    assert [(r.prompt, r.text, r.error) for r in replayed] == [
        (r.prompt, r.text, r.error) for r in results
    ]
    # Redacting again changes nothing.
    assert g.cassette.redact(redacted) == redacted


def test_record_session_redacts_by_default() -> None:
    cassette, results = record(["Hello there"])
    assert cassette.redacted
    assert g.cassette.lint(cassette) == []
    assert results[0].text == g.server.expected_reply("Hello there")


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
    assert g.cassette.lint(cassette) == []
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


def test_a_placeholder_before_a_closing_quote_is_no_cut_secret() -> None:
    # The reply quotes the prompt, so a redacted secret ends up just before
    # the closing quote: the value ends with the whole placeholder and the
    # quote, which lint must not take for a piece of a secret.  (JSON escapes
    # this secret in the request, where its placeholder is longer.)
    secret = 'pässwörd"42'
    cassette, results = record([f"my pw is {secret}"], secrets=(secret,))
    assert f"{secret}\u201d" in results[0].text
    assert_absent({secret}, texts_of(cassette))
    assert g.cassette.lint(cassette) == []


# -- cookies, set-cookies, proxy credentials (built by hand) ----------------------------------

SESSION = "9f8e7d6c5b4a39281716a5b4c3d2e1f0"
PROXY_CREDENTIALS = "dXNlcjpodW50ZXIy"  # user:hunter2
LOGIN_TOKEN = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
FINGERPRINT = "00112233445566778899aabbccddeeff"


def cookie_cassette() -> g.cassette.Cassette:
    login_body = json.dumps({"fingerprint": FINGERPRINT, "platform": "fingerprint"}).encode()
    login = g.cassette.RecordedRequest(
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
    text = g.cassette.RecordedRequest(
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
    return g.cassette.Cassette(
        interactions=(
            g.cassette.Interaction(1, login, response_from("POST", [(0.1, login_reply)])),
            g.cassette.Interaction(
                1, text, response_from("GET", [(0.3, json_response({"code": 0}))])
            ),
        ),
        recorded_at="2024-01-02T03:04:05Z",
        origin="http://example",
        redacted=False,
    )


def test_cookies_and_proxy_credentials_are_redacted() -> None:
    raw = cookie_cassette()
    assert g.cassette.Cassette.loads(raw.dumps()) == raw
    findings = g.cassette.lint(raw)
    joined = "\n".join(findings)
    assert "interactions[0].request.headers[2] (proxy-authorization): an unredacted credential" in (
        joined
    )
    assert "interactions[0].request.headers[2] (proxy-authorization): a bearer or basic" in joined
    assert "interactions[1].request.headers[1] (cookie): an unredacted credential" in joined
    assert "interactions[0].chunks: a hex run of 32 characters" in joined  # the set-cookie
    assert "interactions[1].request.headers[3] (authorization): a bearer" in joined

    redacted = g.cassette.redact(raw)
    assert g.cassette.lint(redacted) == []
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
    assert g.cassette.Cassette.loads(redacted.dumps()) == redacted


def test_a_secret_straddling_two_reads_is_redacted() -> None:
    reply = json_response(
        {"code": 0, "msg": "ok", "data": {"token": LOGIN_TOKEN, "expires_at": 2000000000}}
    )
    cut = reply.index(LOGIN_TOKEN.encode()) + 13
    body = json.dumps({"fingerprint": FINGERPRINT, "platform": "fingerprint"}).encode()
    request = g.cassette.RecordedRequest(
        0.0, "POST", "/api/chatgpt/user/login", (("host", "example"),), body
    )
    raw = g.cassette.Cassette(
        interactions=(
            g.cassette.Interaction(
                1, request, response_from("POST", [(0.1, reply[:cut]), (0.2, reply[cut:])])
            ),
        ),
        recorded_at="2024-01-02T03:04:05Z",
        origin="http://example",
        redacted=False,
    )
    assert any("chunks: a hex run" in finding for finding in g.cassette.lint(raw))
    redacted = g.cassette.redact(raw)
    first, second = redacted.interactions[0].response.chunks
    assert (len(first.data), len(second.data)) == (cut, len(reply) - cut)
    assert (first.t, second.t) == (0.1, 0.2)
    assert LOGIN_TOKEN[:13].encode() not in first.data
    assert LOGIN_TOKEN[13:].encode() not in second.data
    wire = redacted.interactions[0].response.wire
    assert b'"token": "<login-token-1>' in wire
    assert len(wire) == len(reply)
    assert_absent({LOGIN_TOKEN, FINGERPRINT}, texts_of(redacted))
    assert g.cassette.lint(redacted) == []
    assert g.cassette.Cassette.loads(redacted.dumps()) == redacted


def _echo_cassette(secret: str, t: float) -> g.cassette.Cassette:
    body = json.dumps({"content": f"say {secret}"}).encode()
    request = g.cassette.RecordedRequest(t, "POST", "/api/echo", (("host", "example"),), body)
    reply = json_response({"code": 0, "echo": secret})
    return g.cassette.Cassette(
        interactions=(
            g.cassette.Interaction(1, request, response_from("POST", [(t + 0.1, reply)])),
        ),
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
    kept = g.cassette.redact(_echo_cassette(old, 0.0), [old])
    joined = g.cassette.redact(kept.extend(_echo_cassette(new, 0.0)), [new])
    first, second = (item.request.json()["content"] for item in joined.interactions)
    assert_absent({old, new}, texts_of(joined))
    assert first == kept.interactions[0].request.json()["content"]
    assert len(first) == len(second)
    assert first != second, "two different secrets got the same placeholder"
