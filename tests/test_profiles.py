"""Profiles: the generic profile's redaction and matching, and ``--profile``
on every command (``record --listen`` and ``replay --serve`` with the
official openai SDK as the client)."""

from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import gptalk_proto as g
from gptalk_proto.cassette import GENERIC, GPTALK, Cassette, lint, profile_named, redact
from gptalk_transports import load_cassette

from . import llm_app
from .console import gptalk, listening
from .sdk_cases import OTHER_KEY, stream_sdk
from .test_cassette_format import response_from

pytestmark = pytest.mark.timeout(120)

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
OPENAI = CASSETTES / "openai-stream.json"
ANTHROPIC = CASSETTES / "anthropic-stream.json"

SECRET = "s3cr3t-value-ABCDEFGH"


def _one(headers: list[tuple[str, str]], target: str, body: bytes, response: bytes) -> Cassette:
    request = g.cassette.RecordedRequest(0.0, "POST", target, tuple(headers), body)
    item = g.cassette.Interaction(1, request, response_from("POST", [(0.1, response)]))
    return Cassette((item,), "2026-01-01T00:00:00Z", "http://127.0.0.1:1", False, profile="generic")


def _json_response(document: object) -> bytes:
    body = json.dumps(document).encode()
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


@pytest.mark.parametrize(
    "header",
    [
        "Authorization",
        "Proxy-Authorization",
        "Cookie",
        "x-api-key",
        "api-key",
        "X-Goog-Api-Key",
        "X-Session-Token",
        "X-Client-Secret",
    ],
)
def test_generic_redacts_credential_headers_of_any_scheme(header: str) -> None:
    value = f"Token {SECRET}" if "authorization" in header.lower() else SECRET
    cassette = redact(_one([(header, value)], "/v1/x", b"", _json_response({})))
    text = cassette.dumps()
    assert SECRET not in text
    (item,) = cassette.interactions
    assert len(dict(item.request.headers)[header]) == len(value)  # same length
    assert lint(cassette) == []


@pytest.mark.parametrize("key", ["key", "api_key", "token", "access_token"])
def test_generic_redacts_query_values_and_json_fields_by_name(key: str) -> None:
    body = json.dumps({"model": "m", "auth": {key: SECRET}, "list": [{key: SECRET + "2"}]})
    response = _json_response({"data": {key: SECRET + "3"}})
    cassette = redact(_one([], f"/v1/x?{key}={SECRET}4&page=2", body.encode(), response))
    text = cassette.dumps()
    for suffix in ("", "2", "3", "4"):
        assert SECRET + suffix not in text
    assert "page=2" in text  # other values stay
    assert Cassette.loads(text) == cassette  # the response still parses: same lengths


def test_gptalk_keeps_its_own_rules() -> None:
    # A header the generic profile redacts by name is GPTalk's business only
    # when GPTalk says so: the default profile is unchanged.
    cassette = replace(
        _one([("x-api-key", SECRET)], "/v1/x", b"", _json_response({})), profile="gptalk"
    )
    assert SECRET in redact(cassette).dumps()
    assert SECRET not in redact(cassette, profile=GENERIC).dumps()


def test_generic_matching_ignores_headers_and_redacted_values_not_the_body() -> None:
    body = json.dumps({"model": "m", "key": SECRET, "n": 1}).encode()
    cassette = redact(_one([("x-api-key", SECRET)], "/v1/x", body, _json_response({})))
    other = json.dumps({"model": "m", "key": "another-key-of-any-length", "n": 1}).encode()
    replayer = g.cassette.Replayer(cassette)
    assert replayer.match("POST", "/v1/x", [("x-api-key", "k"), ("user-agent", "z")], other)
    wrong = json.dumps({"model": "m", "key": "k", "n": 2}).encode()
    with pytest.raises(g.cassette.CassetteMismatch, match=r"body\.n"):
        g.cassette.Replayer(cassette).match("POST", "/v1/x", [], wrong)
    with pytest.raises(g.cassette.CassetteMismatch, match="path"):
        g.cassette.Replayer(cassette).match("POST", "/v1/y", [], other)
    with pytest.raises(g.cassette.CassetteMismatch, match="query"):
        g.cassette.Replayer(cassette).match("POST", "/v1/x?stream=1", [], other)
    # GPTalk's profile compares headers.
    with pytest.raises(g.cassette.CassetteMismatch, match="header user-agent"):
        g.cassette.Replayer(cassette, GPTALK).match("POST", "/v1/x", [("user-agent", "z")], other)


def test_volatile_fields_are_ignored_at_any_depth_and_checked() -> None:
    body = json.dumps({"meta": {"request_id": "a"}, "model": "m"}).encode()
    cassette = _one([], "/v1/x", body, _json_response({}))
    sent = json.dumps({"meta": {"request_id": "b"}, "model": "m"}).encode()
    with pytest.raises(g.cassette.CassetteMismatch):
        g.cassette.Replayer(cassette).match("POST", "/v1/x", [], sent)
    lenient = GENERIC.with_volatile(["request_id"])
    assert g.cassette.Replayer(cassette, lenient).match("POST", "/v1/x", [], sent)
    for bad in ("request_id", ["", "x"], [1]):
        with pytest.raises(g.LocalProtocolError):
            GENERIC.with_volatile(bad)  # type: ignore[arg-type]
    with pytest.raises(g.LocalProtocolError, match="unknown profile"):
        profile_named("openaii")


# -- the commands -------------------------------------------------------------------------------


def test_the_shipped_sdk_cassettes_verify_lint_and_export_under_their_profile() -> None:
    done = gptalk("cassette", "verify", str(OPENAI), str(ANTHROPIC), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "inside a CRLF" in done.stdout
    assert "inside a UTF-8 character" in done.stdout
    assert gptalk("cassette", "lint", str(OPENAI), str(ANTHROPIC)).returncode == 0
    har = gptalk("cassette", "to-har", str(OPENAI))
    assert json.loads(har.stdout)["log"]["_profile"] == "generic"
    forced = gptalk("cassette", "to-har", "--profile", "gptalk", str(OPENAI))
    assert json.loads(forced.stdout)["log"]["_profile"] == "gptalk"
    bad = gptalk("cassette", "verify", "--profile", "nope", str(OPENAI))
    assert bad.returncode == 2
    assert "invalid choice" in bad.stderr


def test_commands_that_need_our_client_refuse_another_profile(tmp_path: Path) -> None:
    done = gptalk("replay", str(OPENAI), "--speed", "0")
    assert done.returncode == 2, done.stderr
    assert "--serve" in done.stderr
    done = gptalk("record", "-o", str(tmp_path / "x.json"), "--profile", "generic", "hi")
    assert done.returncode == 2, done.stderr
    assert "--listen" in done.stderr
    assert not (tmp_path / "x.json").exists()


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    return process.returncode, err


def test_record_listen_then_replay_serve_with_the_openai_sdk(tmp_path: Path) -> None:
    output = tmp_path / "openai.json"
    with llm_app.run_in_thread() as upstream, listening(
        "record", "--listen", "--url", upstream, "--profile", "generic", "--no-env-proxy",
        "-o", str(output), timeout=60,
    ) as (proxy, url):  # fmt: skip
        try:
            live = stream_sdk("openai", url)
        finally:
            code, err = _stop(proxy)
    assert code == 0, err
    assert "recorded 1 chats" in err
    cassette = load_cassette(output)
    assert cassette.profile == "generic"
    assert llm_app.API_KEY not in output.read_text(encoding="utf-8")
    with listening("replay", "--serve", str(output), "--speed", "0", timeout=60) as (server, url):
        try:
            assert stream_sdk("openai", url, key=OTHER_KEY) == live
        finally:
            code, err = _stop(server)
    assert code == 0, err  # every step played


def test_a_body_nested_past_the_json_parser_is_a_mismatch_not_a_crash() -> None:
    cassette = load_cassette(OPENAI)
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(g.cassette.CassetteMismatch, match="body"):
        g.cassette.Replayer(cassette).match("POST", "/v1/chat/completions", [], deep)
    server = g.cassette.ReplayServer([cassette], speed=0)
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n"
    actions = server.connection().receive_data(head % len(deep) + deep)
    writes = [a for a in actions if isinstance(a, g.cassette.ReplayWrite)]
    assert writes[0].data.startswith(b"HTTP/1.1 409 ")
    # Recorded by the proxy, the same body is kept as bytes, and redacted.
    recorded = _one([("x-api-key", SECRET)], "/v1/x", deep, _json_response({}))
    assert SECRET not in redact(recorded).dumps()


#: A cassette of the same shape with no secret in it: the format's own words.
_SKELETON = _one(
    [("Authorization", "Bearer -")], "/v1/x?key=-", b'{"model": "m"}', _json_response({"n": 1})
).dumps()


@settings(max_examples=150, deadline=None)
@given(
    secret=st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\'),
        min_size=8,
        max_size=40,
    ),
    header=st.sampled_from(["Authorization", "x-api-key", "api-key", "X-My-Token"]),
    field=st.sampled_from(["key", "api_key", "token", "access_token"]),
)
def test_any_key_is_redacted_everywhere_and_the_replay_still_matches(
    secret: str, header: str, field: str
) -> None:
    # Redaction replaces values, never the format's own words (its keys, a
    # status line): a secret spelled like one of them ("recorded", of
    # "recorded_at") stays in those words, by design.
    assume(secret not in _SKELETON)
    value = f"Bearer {secret}" if header == "Authorization" else secret
    body = json.dumps({"model": "m", field: secret}).encode()
    response = _json_response({"echo": secret, "n": 1})
    target = f"/v1/x?{field}={quote(secret, safe='')}"  # as a client sends it
    cassette = redact(_one([(header, value)], target, body, response))
    text = cassette.dumps()
    assert secret not in text
    loaded = Cassette.loads(text)  # lengths kept: the response parses the same
    sent = json.dumps({"model": "m", field: "another"}).encode()
    assert g.cassette.Replayer(loaded).match("POST", f"/v1/x?{field}=another", [], sent)
