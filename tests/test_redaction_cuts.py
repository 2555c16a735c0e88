"""Redaction knows that values are cut, and that protocol syntax is no value.

A secret a reply quotes is streamed cumulatively (every event repeats the text
so far), cut by a shortened quote, by chunk framing, by the reads, or by a
stream that breaks: no piece of it of ``MIN_REDACTED_PREFIX`` characters or
more may stay.  A secret spelled like protocol syntax (``chunked``, ``data``,
a JSON key) must leave the cassette parsing and replaying.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server
from gptalk_proto.cassette._redact import MIN_REDACTED_PREFIX
from gptalk_transports._cassettes import save_cassette
from gptalk_transports._cli.cassette import verify_cassette
from gptalk_transports._session import ChatResult, record_session, replay_session

from .redaction_cases import response_from, spellings, texts_of

SECRET = "sk-Zq8wP3xLm9TfR2vN7bYcQ"  # 24 characters, mixed like an API key
PREFIXES = [SECRET[:k] for k in range(MIN_REDACTED_PREFIX, len(SECRET))]


def record(prompts: list[str], **kwargs: Any) -> tuple[g.cassette.Cassette, list[ChatResult]]:
    return anyio.run(functools.partial(record_session, prompts, **kwargs))


def longest_piece_left(secret: str, texts: Sequence[str]) -> int:
    """The longest prefix of ``secret`` (any spelling) found in ``texts``."""
    longest = 0
    for k in range(1, len(secret) + 1):
        if any(s in text for s in spellings(secret[:k]) for text in texts):
            longest = k
    return longest


def streamed(text: str, size: int) -> g.server.ReplyGenerator:
    return lambda prompt, model: [text[i : i + size] for i in range(0, len(text), size)]


# -- cumulative events, recorded from the reference server --------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7])
def test_a_secret_streamed_piece_by_piece_leaves_no_piece(size: int, tmp_path: Path) -> None:
    reply = f"Your key is {SECRET}, keep it."
    raw, results = record(["key?"], reply=streamed(reply, size), redact=False)
    assert results[0].text == reply
    # Every prefix of the secret is on the wire, once per event that ends there.
    assert longest_piece_left(SECRET, texts_of(raw)) == len(SECRET)

    cassette = g.cassette.redact(raw, [SECRET])
    left = longest_piece_left(SECRET, texts_of(cassette))
    assert left < MIN_REDACTED_PREFIX, f"{left} characters of the secret stayed"
    assert g.cassette.lint(cassette) == []
    # The events still extend one another: the replay streams as recorded,
    # the placeholder (and its pieces) standing in for the secret.
    replayed = anyio.run(replay_session, cassette)
    assert replayed[0].error is None
    assert replayed[0].text.startswith("Your key is <secret-1>")
    assert replayed[0].text.endswith(", keep it.")
    assert len(replayed[0].text) == len(reply)
    save_cassette(tmp_path / "key.json", cassette)
    verify_cassette(tmp_path / "key.json")


def test_lint_flags_the_pieces_an_older_redaction_left() -> None:
    # Only the whole secret replaced, as before this fix: lint must notice.
    raw, _ = record(["key?"], reply=streamed(f"Your key is {SECRET}, ok", 3), redact=False)
    placeholder = "<secret-1>" + "." * (len(SECRET) - 10)
    old = g.cassette.redact(g.cassette.Cassette.loads(raw.dumps().replace(SECRET, placeholder)))
    assert longest_piece_left(SECRET, texts_of(old)) == len(SECRET) - 3
    findings = [f for f in g.cassette.lint(old) if "cut secret" in f]
    assert findings, g.cassette.lint(old)
    assert all(f.startswith("interactions[2].chunks: a cut secret (") for f in findings)
    assert f"a cut secret ({len(SECRET) - 3} characters" in "\n".join(findings)
    assert SECRET[:4] not in "\n".join(findings)  # lint names no secret
    assert [f for f in g.cassette.lint(g.cassette.redact(old, [SECRET])) if "cut secret" in f] == []


def test_a_shortened_quote_is_redacted() -> None:
    # The reference server quotes a long prompt cut at 57 characters, "...".
    def quoting(prompt: str, model: str) -> list[str]:
        quoted = prompt if len(prompt) <= 60 else prompt[:57] + "..."
        return ["You said: ", f"\u201c{quoted}\u201d. ", "ok"]

    for offset in range(57 - len(SECRET) + 1, 57 - MIN_REDACTED_PREFIX + 1, 3):
        prompt = "x" * offset + SECRET + " and some more words"
        cassette, results = record([prompt], reply=quoting, secrets=[SECRET])
        assert SECRET[: 57 - offset] in results[0].text
        left = longest_piece_left(SECRET, texts_of(cassette))
        assert left < MIN_REDACTED_PREFIX, (offset, left)
        assert g.cassette.lint(cassette) == []


# -- cut anywhere, chunked anyhow (built by hand) ------------------------------------------


def chunked(payload: bytes, cut: Callable[[bytes], list[bytes]]) -> bytes:
    pieces = cut(payload)
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"


def whole(data: bytes) -> list[bytes]:
    return [data]


def single_bytes(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def random_pieces(seed: int) -> Callable[[bytes], list[bytes]]:
    def cut(data: bytes) -> list[bytes]:
        rng = random.Random(seed)
        out, at = [], 0
        while at < len(data):
            size = rng.randint(1, 9)
            out.append(data[at : at + size])
            at += size
        return out

    return cut


CUTTINGS: dict[str, Callable[[bytes], list[bytes]]] = {
    "whole": whole,
    "bytes": single_bytes,
    "random-1": random_pieces(1),
    "random-2": random_pieces(2),
}


def stream_cassette(
    payload: bytes, framing: str, reads: str, *, complete: bool
) -> g.cassette.Cassette:
    """One SSE response carrying ``payload``, chunk-framed and read as cut."""
    body = chunked(payload, CUTTINGS[framing])
    if not complete:
        body = body[: body.rindex(b"0\r\n\r\n")]
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    wire = head + body
    chunks = [(0.1 + i / 1000, piece) for i, piece in enumerate(CUTTINGS[reads](wire))]
    request = g.cassette.RecordedRequest(
        0.0, "GET", "/api/chatgpt/chatapi/stream?token=abcd1234", (("host", "h"),), b""
    )
    end = "complete" if complete else "closed"
    return g.cassette.Cassette(
        interactions=(g.cassette.Interaction(1, request, response_from("GET", chunks, end)),),
        recorded_at="2024-01-02T03:04:05Z",
        origin="http://example",
        redacted=False,
    )


def event(text: str) -> bytes:
    return b"data: " + json.dumps({"content": text}).encode() + b"\n\n"


def check_no_piece(raw: g.cassette.Cassette, cassette: g.cassette.Cassette) -> None:
    assert longest_piece_left(SECRET, texts_of(cassette)) < MIN_REDACTED_PREFIX
    # Framing untouched: same lengths read by read, it loads, its events parse.
    assert [len(c.data) for c in cassette.interactions[0].response.chunks] == [
        len(c.data) for c in raw.interactions[0].response.chunks
    ]
    assert g.cassette.Cassette.loads(cassette.dumps()) == cassette
    assert len(cassette.interactions[0].response.events) == len(raw.interactions[0].response.events)


@pytest.mark.parametrize("reads", list(CUTTINGS))
@pytest.mark.parametrize("framing", list(CUTTINGS))
def test_a_secret_cut_at_every_position_by_a_broken_stream(framing: str, reads: str) -> None:
    # The stream breaks inside the secret, after every possible character.
    for piece in PREFIXES:
        payload = event("Key: ") + b'data: {"content": "Key: ' + piece.encode()
        raw = stream_cassette(payload, framing, reads, complete=False)
        check_no_piece(raw, g.cassette.redact(raw, [SECRET]))


@pytest.mark.parametrize("reads", list(CUTTINGS))
@pytest.mark.parametrize("framing", list(CUTTINGS))
def test_cumulative_events_cut_at_every_position(framing: str, reads: str) -> None:
    text = f"Key: {SECRET} done"
    payload = b"".join(event(text[:end]) for end in range(1, len(text) + 1))
    payload += b"data: [DONE]\n\n"
    raw = stream_cassette(payload, framing, reads, complete=True)
    cassette = g.cassette.redact(raw, [SECRET])
    check_no_piece(raw, cassette)
    # Each event still extends the one before, but once: where the piece
    # grows long enough to be redacted, its first characters turn into the
    # placeholder's (a rewrite, as the client sees it).
    events = cassette.interactions[0].response.events[:-1]
    contents = [json.loads(e.data)["content"] for e in events]
    breaks = [
        (before, after)
        for before, after in itertools.pairwise(contents)
        if not after.startswith(before)
    ]
    assert len(breaks) == 1, breaks
    assert breaks[0][1].endswith("<" + "secret-1"[: MIN_REDACTED_PREFIX - 1])


@pytest.mark.parametrize("framing", list(CUTTINGS))
def test_a_secret_split_by_chunk_framing_is_redacted(framing: str) -> None:
    payload = event(f"the key {SECRET} is here") + b"data: [DONE]\n\n"
    raw = stream_cassette(payload, framing, "whole", complete=True)
    cassette = g.cassette.redact(raw, [SECRET])
    check_no_piece(raw, cassette)
    (first, _) = cassette.interactions[0].response.events
    assert json.loads(first.data)["content"].startswith("the key <secret-1>")


# -- syntax is no value ------------------------------------------------------------------

PROMPT = "hi: content data chunked event stream token 1234 code msg \u00e9t\u00e9"


@pytest.mark.parametrize(
    "secret",
    [
        "chunked",
        "data",
        "content",
        "event",
        "stream",
        "token",
        "code",
        "1234",
        "text/event-stream",
        "application/json",
        "Transfer-Encoding",
        "HTTP/1.1",
        "gptalk.net",
        "there",  # the reply's tab\there: a JSON escape, then "here"
        "nnew line",  # the reply's \nnew line
        "u00e9t",  # the prompt's \u00e9t (an escaped é)
    ],
)
def test_a_secret_spelled_like_syntax_keeps_the_cassette_whole(secret: str, tmp_path: Path) -> None:
    raw, results = record([PROMPT], redact=False)
    cassette = g.cassette.redact(raw, [secret])
    # Same bytes where the syntax is: every read keeps its length, the head
    # and events parse the same, and it loads, replays and verifies.
    for old, new in zip(raw.interactions, cassette.interactions, strict=True):
        assert [len(c.data) for c in old.response.chunks] == [
            len(c.data) for c in new.response.chunks
        ]
        assert [n for n, _ in old.response.headers] == [n for n, _ in new.response.headers]
        assert len(old.response.events) == len(new.response.events)
        assert new.kind == old.kind
    assert g.cassette.Cassette.loads(cassette.dumps()) == cassette
    replayed = anyio.run(replay_session, cassette)
    assert [r.error for r in replayed] == [None]
    assert secret not in replayed[0].text
    assert secret not in replayed[0].prompt
    save_cassette(tmp_path / "c.json", cassette)
    verify_cassette(tmp_path / "c.json")
    assert results[0].error is None


@pytest.mark.parametrize("secrets", ["ab", "long-enough-string", b"bytes"])
def test_one_string_is_not_a_list_of_secrets(secrets: Any) -> None:
    with pytest.raises(g.LocalProtocolError, match="not one string"):
        g.cassette.check_secrets(secrets)
    raw, _ = record(["hi"], redact=False)
    with pytest.raises(g.LocalProtocolError):
        g.cassette.redact(raw, secrets)


@pytest.mark.parametrize("short", ["", "a", "1", "abc"])
def test_a_too_short_secret_is_refused(short: str) -> None:
    with pytest.raises(g.LocalProtocolError, match="too short") as caught:
        g.cassette.check_secrets(["long-enough", short])
    assert "secret 2" in str(caught.value)
    assert g.cassette.check_secrets(["x" * g.cassette.MIN_SECRET_LENGTH]) == (
        "x" * g.cassette.MIN_SECRET_LENGTH,
    )


# -- replay: a placeholder in a recorded request stands for what the client sends ---------


def test_a_placeholder_in_a_recorded_request_matches_the_sent_value() -> None:
    body = {"content": "say <secret-1>....", "accept": "<x2>..", "model": "m"}
    request = g.cassette.RecordedRequest(
        0.0,
        "POST",
        "/api/chatgpt/chatapi/text?token=<stream-token-1>....",
        (("host", "h"), ("accept", "text/event-<secret-3>"), ("content-type", "application/json")),
        json.dumps(body).encode(),
    )
    reply = response_from("POST", [(0.1, b"HTTP/1.1 204 No Content\r\n\r\n")])
    cassette = g.cassette.Cassette(
        interactions=(g.cassette.Interaction(1, request, reply),),
        recorded_at="2024-01-02T03:04:05Z",
        origin="http://h",
        redacted=True,
    )

    def match(target: str, accept: str, content: str, accept_field: str) -> None:
        sent = {"content": content, "accept": accept_field, "model": "m"}
        g.cassette.Replayer(cassette).match(
            "POST",
            target,
            [("host", "h"), ("accept", accept), ("content-type", "application/json")],
            json.dumps(sent).encode(),
        )

    token = "/api/chatgpt/chatapi/text?token=<stream-token-1>...."
    # The client's own values, where the recording redacted a user's secret.
    match(token, "text/event-stream", "say hunter2-secret", "stream")
    # Around the placeholder, the text must agree.
    with pytest.raises(g.cassette.CassetteMismatch, match=r"body\.content"):
        match(token, "text/event-stream", "tell hunter2-secret", "stream")
    with pytest.raises(g.cassette.CassetteMismatch, match="header accept"):
        match(token, "application/json", "say x", "stream")
    # A placeholder the replay handed the client must come back exactly.
    with pytest.raises(g.cassette.CassetteMismatch, match="query token"):
        match(token.replace("-1>", "-2>"), "text/event-stream", "say x", "stream")
