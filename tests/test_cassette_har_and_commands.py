"""The HAR export of every shipped cassette, and the cassette, replay and record commands."""

from __future__ import annotations

import base64
import functools
import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server
from gptalk_proto.cassette._response import parse_response
from gptalk_transports import AsyncClient, Client, Origin, ReadTimeout, RetryPolicy, Timeout
from gptalk_transports._async.connector import AsyncConnector
from gptalk_transports._async.recording import AsyncRecordingConnector
from gptalk_transports._backends.anyio import AnyioBackend
from gptalk_transports._backends.sync import BlockingBackend
from gptalk_transports._cassettes import Recording, load_cassette
from gptalk_transports._server.refserver import serve_in_thread
from gptalk_transports._session import record_session, replay_session
from gptalk_transports._sync.connector import SyncConnector
from gptalk_transports._sync.recording import SyncRecordingConnector

from . import console
from .replay_cases import CASSETTES, SHIPPED, cassette_at, shipped

# The cassette commands read and write whole files: a longer limit.
gptalk = functools.partial(console.gptalk, timeout=60)


# -- HAR ------------------------------------------------------------------------------------------


def _chunk_bytes(entry: dict[str, Any]) -> bytes:
    if entry.get("encoding") == "base64":
        return base64.b64decode(entry["text"])
    return str(entry["text"]).encode("utf-8")


@shipped
def test_har_export_has_the_har_1_2_shape(path: Path) -> None:
    cassette = cassette_at(path)
    har = g.cassette.to_har(cassette)
    json.dumps(har)  # JSON-ready
    log = har["log"]
    assert log["version"] == "1.2"
    assert log["creator"] == {"name": "gptalk-proto", "version": g.__version__}
    assert isinstance(log["pages"], list)
    assert len(log["entries"]) == len(cassette.interactions)
    start = datetime.fromisoformat(cassette.recorded_at.replace("Z", "+00:00"))
    previous = start
    for item, entry in zip(cassette.interactions, log["entries"], strict=True):
        when = datetime.fromisoformat(entry["startedDateTime"].replace("Z", "+00:00"))
        assert when.tzinfo is not None
        assert when >= previous
        assert abs((when - start).total_seconds() - item.request.t) < 0.001
        previous = when
        request, response = entry["request"], entry["response"]
        for key in ("method", "url", "httpVersion", "cookies", "headers", "queryString"):
            assert key in request
        assert request["method"] == item.request.method
        assert request["url"] == cassette.origin.rstrip("/") + item.request.target
        assert request["headers"] == [{"name": n, "value": v} for n, v in item.request.headers]
        assert request["bodySize"] == len(item.request.body)
        assert ("postData" in request) == bool(item.request.body)
        for key in ("status", "statusText", "httpVersion", "cookies", "headers", "content"):
            assert key in response
        assert response["redirectURL"] == ""
        assert response["status"] == item.response.status
        assert response["headers"] == [{"name": n, "value": v} for n, v in item.response.headers]
        _, _, body, _ = parse_response(item.request.method, item.response.wire)
        assert response["content"]["size"] == len(body)
        assert response["content"]["text"] == body.decode("utf-8")
        timings = entry["timings"]
        assert {"send", "wait", "receive"} <= set(timings)
        assert all(timings[key] >= 0 for key in ("send", "wait", "receive"))
        assert entry["time"] == pytest.approx(
            timings["send"] + timings["wait"] + timings["receive"], abs=0.01
        )
        assert entry["connection"] == str(item.connection)
        assert entry["_end"] == item.response.end
        # The extension fields carry the chunks and events, consistent with the cassette.
        chunks = entry["_chunks"]
        assert [c["size"] for c in chunks] == [len(c.data) for c in item.response.chunks]
        assert [_chunk_bytes(c) for c in chunks] == [c.data for c in item.response.chunks]
        for har_chunk, chunk in zip(chunks, item.response.chunks, strict=True):
            assert har_chunk["offset_ms"] == pytest.approx(
                (chunk.t - item.request.t) * 1000, abs=0.001
            )
        assert entry["_events"] == [event._asdict() for event in item.response.events]


def test_to_har_command_writes_the_same_json(tmp_path: Path) -> None:
    path = CASSETTES / "503-then-retry.json"
    out = tmp_path / "out.har"
    done = gptalk("cassette", "to-har", str(path), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == g.cassette.to_har(load_cassette(path))
    printed = gptalk("cassette", "to-har", str(path))
    assert printed.returncode == 0
    assert json.loads(printed.stdout) == g.cassette.to_har(load_cassette(path))


# -- the cassette commands ------------------------------------------------------------------------


def test_verify_command_passes_every_shipped_cassette() -> None:
    done = gptalk("cassette", "verify", *map(str, SHIPPED), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    for path in SHIPPED:
        assert re.search(rf"^{re.escape(str(path))}: ok \(", done.stdout, re.M), done.stdout


def test_verify_command_fails_a_tampered_cassette(tmp_path: Path) -> None:
    raw = json.loads((CASSETTES / "plain-chat.json").read_text(encoding="utf-8"))
    event = raw["interactions"][2]["events"][5]
    edited = event["data"].replace("said", "SAID")
    assert edited != event["data"], "the tampering must change the event"
    event["data"] = edited
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    good = CASSETTES / "plain-chat.json"
    done = gptalk("cassette", "verify", str(good), str(tampered))
    assert done.returncode == 1
    assert f"{good}: ok" in done.stdout
    assert f"{tampered}: FAILED: interactions[2].events" in done.stdout


def test_replay_command_prints_the_recorded_reply() -> None:
    done = gptalk("replay", str(CASSETTES / "plain-chat.json"), "--speed", "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout == g.server.expected_reply("Hello, how are you?") + "\n"


def test_a_cassette_of_two_clients_verifies_and_replays(tmp_path: Path) -> None:
    """Two recordings, each redacted on its own, one after the other (tests
    sharing a cassette, clients of the recording proxy, a restart): each
    begins with its client's login, where a client replaying them in order
    holds a token it would use, and both logins' fingerprints are
    ``<fingerprint-1>``.  The replay logs in where the recording did, with
    a fresh fingerprint: verify passes, replay prints the three replies."""
    first, _ = anyio.run(functools.partial(record_session, ["one", "two"]))
    second, _ = anyio.run(functools.partial(record_session, ["three"]))
    both = first.extend(second)
    chat = ["text", "stream"]
    assert [item.kind for item in both.interactions] == ["login", *chat, *chat, "login", *chat]
    logins = [
        item.request.json()["fingerprint"] for item in both.interactions if item.kind == "login"
    ]
    assert len(logins) == 2
    assert logins[0] == logins[1], "each recording numbers its own"
    path = tmp_path / "two-clients.json"
    path.write_text(both.dumps(), encoding="utf-8")
    verified = gptalk("cassette", "verify", str(path))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "3 chats" in verified.stdout
    replayed = gptalk("replay", str(path), "--speed", "0")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == "".join(
        g.server.expected_reply(prompt) + "\n" for prompt in ("one", "two", "three")
    )


def test_record_command_then_verify_and_lint(tmp_path: Path) -> None:
    out = tmp_path / "hi.json"
    done = gptalk("record", "-o", str(out), "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == g.server.expected_reply("hi") + "\n"
    assert "recorded 3 exchanges" in done.stderr
    verified = gptalk("cassette", "verify", str(out))
    assert verified.returncode == 0, verified.stdout
    assert "1 chats" in verified.stdout
    linted = gptalk("cassette", "lint", str(out))
    assert linted.returncode == 0, linted.stdout
    cassette = load_cassette(out)
    assert cassette.redacted
    assert [item.kind for item in cassette.interactions] == ["login", "text", "stream"]


def test_record_command_stops_a_stream_at_max_events(tmp_path: Path) -> None:
    out = tmp_path / "three.json"
    done = gptalk("record", "--max-events", "3", "-o", str(out), "hi")
    assert done.returncode == 0, done.stderr
    assert "gptalk: chat 'hi' ended with: the reply stream" in done.stderr
    cassette = load_cassette(out)
    stream = cassette.interactions[-1]
    assert stream.kind == "stream"
    assert stream.response.end == "stopped"
    assert len(stream.response.events) == 3
    verified = gptalk("cassette", "verify", str(out))
    assert verified.returncode == 0, verified.stdout
    results = anyio.run(replay_session, cassette)
    assert [type(r.error) for r in results] == [g.StreamInterrupted]


def _stopped_after_one_event(cassette: g.cassette.Cassette) -> None:
    stream = cassette.interactions[-1]
    assert stream.kind == "stream"
    assert stream.response.end == "stopped"
    first = json.dumps({"content": g.server.default_reply("hi")[0]})
    assert [e.data for e in stream.response.events] == [first]


def test_an_idle_timeout_ends_a_silent_stream() -> None:
    """The server waits a minute between events; the recording stops after the
    first one, 2 s later, and the client sees the stream end there.  (The idle
    timeout covers every read: 2 s, so a busy machine's pause in the login
    answer does not end the recording there.)"""
    started = time.monotonic()
    cassette, results = anyio.run(
        functools.partial(record_session, ["hi"], faults=["delay=60"], idle_timeout=2)
    )
    assert time.monotonic() - started < 50, "did not wait for the server's next event"
    _stopped_after_one_event(cassette)
    first = g.server.default_reply("hi")[0]
    assert [(r.text, type(r.error)) for r in results] == [(first, g.StreamInterrupted)]


def test_an_idle_timeout_ends_a_silent_stream_blocking() -> None:
    started = time.monotonic()
    with serve_in_thread(faults=["delay=60"]) as url:
        recording = Recording(url, idle_timeout=2)
        connector = SyncRecordingConnector(
            SyncConnector(BlockingBackend(), Origin.parse(url)), recording
        )
        client = Client(url, connector=connector, retry=RetryPolicy(backoff=0.0))
        with client, pytest.raises(g.StreamInterrupted) as caught:
            client.chat("hi")
    assert caught.value.text == g.server.default_reply("hi")[0]
    assert time.monotonic() - started < 50, "did not wait for the server's next event"
    _stopped_after_one_event(recording.cassette())


@pytest.mark.parametrize("blocking", [False, True])
def test_the_clients_own_read_timeout_stays_its_own(blocking: bool) -> None:
    """A read timeout shorter than the idle timeout is the client's error,
    not the end of the recording."""
    with serve_in_thread(faults=["delay=30"]) as url:
        recording = Recording(url, idle_timeout=20)
        timeout = Timeout(connect=5, read=0.3)
        retry = RetryPolicy(retries=0)
        if blocking:
            connector = SyncRecordingConnector(
                SyncConnector(BlockingBackend(), Origin.parse(url)), recording
            )
            client = Client(url, connector=connector, timeout=timeout, retry=retry)
            with client, pytest.raises(ReadTimeout):
                client.chat("hi")
        else:

            async def chat() -> None:
                inner = AsyncConnector(AnyioBackend(), Origin.parse(url))
                connector = AsyncRecordingConnector(inner, recording)
                async with AsyncClient(
                    url, connector=connector, timeout=timeout, retry=retry
                ) as client:
                    await client.chat("hi")

            with pytest.raises(ReadTimeout):
                anyio.run(chat)
    stream = recording.cassette().interactions[-1]
    assert stream.response.end != "stopped"


def test_max_events_cuts_exactly_inside_one_read() -> None:
    """Ten events in one read, a limit of three: the session keeps exactly the
    bytes up to the third event's end, and they parse to three events."""
    recorder = g.cassette.Recorder("http://x", max_events=3)
    number = recorder.open_connection()
    recorder.sent(
        number, b"GET /api/chatgpt/chatapi/stream?token=a HTTP/1.1\r\nhost: x\r\n\r\n", 0.0
    )
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    events = [b'data: {"content": "%d"}\n\n' % i for i in range(10)]
    data = head + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)
    keep = recorder.received(number, data, 0.1)
    assert recorder.should_stop(number)
    assert 0 < keep < len(data)
    _, _, _, parsed = parse_response("GET", data[:keep])
    assert [e.data for e in parsed] == ['{"content": "0"}', '{"content": "1"}', '{"content": "2"}']
