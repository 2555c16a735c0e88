"""Secrets where redaction did not look.

A chunked response's trailer section (RFC 9112 section 7.1.2) holds field
lines as a head does; a secret in one stayed.  And a request's path: some
APIs take a key as a path segment
(``/bot<key>/getMe``), and a secret the caller names (``--secret``) stayed
there, in a cassette marked redacted, with lint silent.  The path is now a
value redaction reads (the profile's own step paths apart: those are the
syntax that says what a step is), and a placeholder in a recorded path
matches on replay as one in a value does."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_proto.cassette._value_spans import target_value_spans
from gptalk_transports import record_through_proxy_in_thread
from gptalk_transports._server.replay import serve_cassettes_in_thread

from .hostile_peer import scripted_peer

KEY = "123456:AAHsecretTOKENvalue"
BODY = b'{"ok": true}'
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n" + BODY


def _one_request(origin: str, target: str, profile: str) -> g.cassette.Cassette:
    recorder = g.cassette.Recorder(origin, profile=g.cassette.profile_named(profile))
    number = recorder.open_connection()
    recorder.sent_request(
        number, method=b"GET", target=target.encode(), headers=[(b"host", b"up")], body=b"", t=0.0
    )
    recorder.received(number, ANSWER, 0.01)
    recorder.received(number, b"", 0.02)
    return recorder.cassette(recorded_at="2026-12-05T00:00:00Z", redact=True, secrets=[KEY])


@pytest.mark.parametrize(
    ("target", "spans"),
    [
        (b"/a/b?x=1&y=2", [(0, 4), (7, 8), (11, 12)]),
        (b"/a#f", [(0, 2)]),
        (b"http://h:1/p/q?k=v", [(10, 14), (17, 18)]),
        (b"https://h", []),
        (b"?x=1", [(3, 4)]),
    ],
)
def test_the_values_of_a_target(target: bytes, spans: list[tuple[int, int]]) -> None:
    assert target_value_spans(target) == spans


@pytest.mark.parametrize("profile", ["generic", "gptalk"])
def test_a_named_secret_in_a_path_is_redacted_and_still_matches(profile: str) -> None:
    cassette = _one_request(f"https://api.example/bot{KEY}", f"/bot{KEY}/getMe?x=1", profile)
    assert KEY not in cassette.dumps()
    [item] = cassette.interactions
    assert item.request.target.startswith("/bot<")
    assert item.request.target.endswith("/getMe?x=1")
    assert len(item.request.target) == len(f"/bot{KEY}/getMe?x=1")
    assert cassette.origin.startswith("https://api.example/bot<")
    # The same request matches; another method of the same bot does not.
    replayer = g.cassette.Replayer(cassette)
    with pytest.raises(g.cassette.CassetteMismatch, match="path: recorded"):
        replayer.match("GET", f"/bot{KEY}/getUpdates?x=1", [("host", "up")], b"")
    replayer.match("GET", f"/bot{KEY}/getMe?x=1", [("host", "up")], b"")
    assert replayer.unplayed() == []


@pytest.mark.parametrize(
    ("sent", "fits"),
    [
        ("/botOTHER-KEY/getMe", True),  # a replay's own key, of any length
        ("/bot/getMe", False),  # no key at all
        ("/bot/admin/x/getMe", False),  # other segments in the key's place
        ("/botA/B/getMe", False),
        ("/bot/getMe/getMe", False),
    ],
)
def test_a_path_placeholder_stands_for_one_segments_text(sent: str, fits: bool) -> None:
    """A placeholder in a recorded path matched any text, "/" and nothing
    included: a client that left its key out, or sent another endpoint
    ending as the recorded one, got the recorded answer."""
    cassette = _one_request("https://api.example", f"/bot{KEY}/getMe", "generic")
    replayer = g.cassette.Replayer(cassette)
    if fits:
        replayer.match("GET", sent, [("host", "up")], b"")
        assert replayer.unplayed() == []
    else:
        with pytest.raises(g.cassette.CassetteMismatch, match="path: recorded"):
            replayer.match("GET", sent, [("host", "up")], b"")


def test_a_step_path_stays_as_it_is() -> None:
    # "stream" named as a secret: GPTalk's stream path is the step's name.
    recorder = g.cassette.Recorder("https://gptalk.example")
    number = recorder.open_connection()
    for target in (g.STREAM_PATH + "?token=t", "/elsewhere/stream"):
        recorder.sent_request(
            number, method=b"GET", target=target.encode(), headers=[], body=b"", t=0.0
        )
        recorder.received(number, ANSWER, 0.01)
    cassette = recorder.cassette(recorded_at="2026-12-05T00:00:00Z", secrets=["stream"])
    known, other = (item.request.target for item in cassette.interactions)
    assert known.startswith(g.STREAM_PATH + "?token=")  # (the token is redacted)
    assert "stream" not in other
    assert other.startswith("/elsewhere/")


def test_through_the_proxy_and_back_to_the_same_client() -> None:
    def answer(target: str, headers: object, body: bytes) -> bytes:
        return ANSWER

    def get(url: str) -> tuple[int, bytes]:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        conn.request("GET", f"/bot{KEY}/getMe")
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return response.status, body

    with (
        scripted_peer({"any": answer}) as upstream,
        record_through_proxy_in_thread(
            upstream, trust_env=False, profile="generic", secrets=(KEY,)
        ) as run,
    ):
        assert get(run.url) == (200, BODY)
    cassette = run.cassette
    assert cassette is not None
    assert KEY not in cassette.dumps()
    with serve_cassettes_in_thread([cassette], speed=0) as url:
        assert get(url) == (200, BODY)


def test_a_secret_in_a_trailer_field_is_redacted() -> None:
    recorder = g.cassette.Recorder(
        "https://api.example", profile=g.cassette.profile_named("generic")
    )
    number = recorder.open_connection()
    recorder.sent_request(number, method=b"GET", target=b"/s", headers=[], body=b"", t=0.0)
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
        b"trailer: x-session\r\n\r\n7\r\ndata: 1\r\n0\r\nx-session: %s\r\n\r\n" % KEY.encode()
    )
    recorder.received(number, answer, 0.01)
    cassette = recorder.cassette(recorded_at="2026-12-05T00:00:00Z", secrets=[KEY])
    wire = cassette.interactions[0].response.wire
    assert KEY.encode() not in wire
    assert len(wire) == len(answer)
    assert wire.endswith(b"\r\n\r\n")
    assert b"\r\nx-session: <secret-1>" in wire


FORM = [(b"content-type", b"application/x-www-form-urlencoded")]


def test_a_forms_secret_fields_are_redacted_and_the_form_still_matches() -> None:
    """An OAuth token request's client_secret, and a token answer in a form
    (as some services give it): found by name, as JSON fields are."""
    recorder = g.cassette.Recorder(
        "https://api.example", profile=g.cassette.profile_named("generic")
    )
    number = recorder.open_connection()
    body = b"grant_type=client_credentials&client_secret=SuperSecretValue123&client_id=me"
    recorder.sent_request(
        number, method=b"POST", target=b"/oauth/token", headers=FORM, body=body, t=0.0
    )
    answer = b"access_token=AT-0123456789abcdef&token_type=bearer&refresh_token=RT%2Fxyz012345"
    recorder.received(
        number,
        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-www-form-urlencoded\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(answer), answer),
        0.01,
    )
    cassette = recorder.cassette(recorded_at="2026-12-05T00:00:00Z")
    text = cassette.dumps()
    for secret in ("SuperSecretValue123", "AT-0123456789abcdef", "RT%2Fxyz012345", "RT/xyz"):
        assert secret not in text
    assert "token_type=bearer" in text  # a field's name is not a secret's
    [item] = cassette.interactions
    assert len(item.request.body) == len(body)
    replayer = g.cassette.Replayer(cassette)
    with pytest.raises(g.cassette.CassetteMismatch, match="body: recorded"):
        replayer.match("POST", "/oauth/token", [], body.replace(b"client_id=me", b"client_id=you"))
    replayer.match("POST", "/oauth/token", [], body)
    assert replayer.unplayed() == []


def test_a_long_form_is_read_to_its_end() -> None:
    recorder = g.cassette.Recorder(
        "https://api.example", profile=g.cassette.profile_named("generic")
    )
    number = recorder.open_connection()
    body = b"a=b&" * 100_000 + b"password=hunter2-hunter2"
    recorder.sent_request(number, method=b"POST", target=b"/f", headers=FORM, body=body, t=0.0)
    recorder.received(number, b"HTTP/1.1 204 No Content\r\n\r\n", 0.01)
    cassette = recorder.cassette(recorded_at="2026-12-05T00:00:00Z")
    assert b"hunter2" not in cassette.interactions[0].request.body


@pytest.mark.parametrize(
    ("target", "body", "secret"),
    [
        # A password with spaces, form-encoded as browsers and clients do.
        (b"/login", b"user=me&password=correct+horse+battery", b"correct+horse+battery"),
        # An escape in lowercase (RFC 3986 section 2.1: equivalent).
        (b"/login", b"client_secret=abc%2fdef%2bghij&x=1", b"abc%2fdef%2bghij"),
        (b"/v1?api_key=abc+def+ghij&x=1", b"", b"abc+def+ghij"),
        (b"/v1?api_key=abc%2fdef%2bghij", b"", b"abc%2fdef%2bghij"),
    ],
)
def test_a_named_value_is_redacted_as_spelled(target: bytes, body: bytes, secret: bytes) -> None:
    """A form field's or query value's secret was found decoded, and only
    its decoded spellings (as is, JSON, quote()) were replaced: "a+b" and
    "%2f" stayed, in a cassette marked redacted."""
    recorder = g.cassette.Recorder(
        "https://api.example", profile=g.cassette.profile_named("generic")
    )
    number = recorder.open_connection()
    recorder.sent_request(number, method=b"POST", target=target, headers=FORM, body=body, t=0.0)
    recorder.received(number, b"HTTP/1.1 204 No Content\r\n\r\n", 0.01)
    cassette = recorder.cassette(recorded_at="2026-12-05T00:00:00Z")
    assert secret.decode() not in cassette.dumps()
    [item] = cassette.interactions
    assert len(item.request.target) == len(target)
    assert len(item.request.body) == len(body)
    replayer = g.cassette.Replayer(cassette)
    replayer.match("POST", target.decode(), [], body)
    assert replayer.unplayed() == []
