"""The server machine: tokens, limits, hostile requests, fault specs."""

from __future__ import annotations

import json
import random

import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_proto.server._faults import parse_faults

NOW = 1_700_000_000.0


def exchange(service: g.server.Service, raw: bytes, now: float = NOW) -> tuple[bytes, bool]:
    """Feed raw request bytes; return (response bytes, closed?)."""
    conn = g.server.ServerConnection(service)
    conn.receive_data(raw)
    out = b""
    event = conn.next_event()
    if event is g.NEED_DATA or event is g.PAUSED:
        return out, event is g.PAUSED
    for action in conn.respond(event, now=now):
        if isinstance(action, g.server.Send):
            out += action.data
        elif isinstance(action, g.server.Close):
            return out, True
    return out, False


def post(path: str, body: bytes, headers: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n{headers}\r\n"
    ).encode() + body


def body_of(response: bytes) -> dict[str, object]:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])  # type: ignore[no-any-return]


def login(service: g.server.Service, now: float = NOW) -> str:
    body = json.dumps({"fingerprint": "ab" * 16, "platform": "fingerprint"}).encode()
    response, _ = exchange(service, post(g.LOGIN_PATH, body), now)
    data = body_of(response)["data"]
    assert isinstance(data, dict)
    return str(data["token"])


def text(service: g.server.Service, token: str, now: float = NOW) -> dict[str, object]:
    body = json.dumps({"content": "hi", "accept": "stream", "model": "m"}).encode()
    response, _ = exchange(
        service, post(g.TEXT_PATH, body, f"authorization: Bearer {token}\r\n"), now
    )
    return body_of(response)


def test_tokens_come_from_the_injected_entropy() -> None:
    one = g.server.Service(entropy=random.Random(5).randbytes)
    two = g.server.Service(entropy=random.Random(5).randbytes)
    assert login(one) == login(two)
    assert len(login(one)) == 32


def test_a_token_serves_five_texts_then_quota(service: g.server.Service) -> None:
    token = login(service)
    for _ in range(5):
        assert "token" in text(service, token)["data"]  # type: ignore[operator]
    assert text(service, token)["code"] == g.ErrorCode.QUOTA_EXHAUSTED
    assert "data" not in text(service, token)


def test_expiry_and_unknown_tokens(service: g.server.Service) -> None:
    token = login(service)
    assert text(service, token, now=NOW + service.token_ttl)["code"] == g.ErrorCode.AUTH_EXPIRED
    assert text(service, "nope")["code"] == g.ErrorCode.AUTH_INVALID


def test_stream_tokens_are_single_use(service: g.server.Service) -> None:
    token = login(service)
    stream_token = text(service, token)["data"]["token"]  # type: ignore[index]
    raw = f"GET {g.STREAM_PATH}?token={stream_token} HTTP/1.1\r\nhost: x\r\n\r\n".encode()
    first, _ = exchange(service, raw)
    assert b"text/event-stream" in first
    assert b"data: [DONE]" in first
    second, _ = exchange(service, raw)
    assert body_of(second)["code"] == g.ErrorCode.AUTH_INVALID


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /nope HTTP/1.1\r\nhost: x\r\n\r\n", 404),
        (b"GET /api/chatgpt/user/login HTTP/1.1\r\nhost: x\r\n\r\n", 405),
        (b"BLAH\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n", 400),
        (post(g.LOGIN_PATH, b"x" * (g.server.DEFAULT_MAX_REQUEST_BODY + 1)), 413),
        (b"GET / HTTP/1.1\r\nhost: x\r\nx: " + b"a" * 20000 + b"\r\n\r\n", 431),
    ],
)
def test_hostile_requests_get_a_clear_status(
    service: g.server.Service, raw: bytes, status: int
) -> None:
    response, _closed = exchange(service, raw)
    assert response.startswith(f"HTTP/1.1 {status} ".encode())


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"fingerprint": "short", "platform": "fingerprint"}', b"{}"],
)
def test_bad_login_bodies_get_bad_request_envelope(service: g.server.Service, body: bytes) -> None:
    response, _ = exchange(service, post(g.LOGIN_PATH, body))
    assert body_of(response)["code"] == g.ErrorCode.BAD_REQUEST


def test_chunked_request_body_over_cap_is_413(service: g.server.Service) -> None:
    conn = g.server.ServerConnection(service, max_body_size=10)
    conn.receive_data(
        b"POST /api/chatgpt/user/login HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
    )
    event = conn.next_event()
    assert event == g.server.BadRequest(413, "request body over 10 bytes")


def test_the_token_tables_are_bounded(
    monkeypatch: pytest.MonkeyPatch, service: g.server.Service
) -> None:
    monkeypatch.setattr("gptalk_proto.server._service.MAX_TOKENS", 3)
    tokens = [login(service) for _ in range(5)]
    assert text(service, tokens[0])["code"] == g.ErrorCode.AUTH_INVALID  # forgotten
    assert "data" in text(service, tokens[-1])


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ("status=503@text#1", g.server.Fault("status", 503, "text", 1, 1)),
        ("status=500", g.server.Fault("status", 500, "any", 1, None)),
        ("envelope=quota", g.server.Fault("envelope", "quota", "text", 1, None)),
        ("cut=3", g.server.Fault("cut", 3, "stream", 1, None)),
        ("newline=crlf", g.server.Fault("newline", "\r\n", "stream", 1, None)),
        ("keepalive=2@stream#2+", g.server.Fault("keepalive", 2, "stream", 2, None)),
        ("close@login#2-4", g.server.Fault("close", None, "login", 2, 4)),
        ("stall=1.5@any", g.server.Fault("stall", 1.5, "any", 1, None)),
        ("coalesce", g.server.Fault("coalesce", None, "stream", 1, None)),
    ],
)
def test_fault_specs_parse_and_print_back(spec: str, fault: g.server.Fault) -> None:
    assert g.server.parse_fault(spec) == fault
    assert g.server.parse_fault(str(fault)) == fault


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bogus", "unknown kind"),
        ("status", "needs a value"),
        ("status=700", "200 to 599"),
        ("close=1", "takes no value"),
        ("cut=abc", "'abc' is not a whole number"),
        ("cut=3_0", "'3_0' is not a whole number"),
        ("keepalive=-2", "'-2' is not a whole number"),
        ("delay=soon", "'soon' is not a number of seconds"),
        ("delay=nan", "from 0 to 86400"),
        ("status=abc", "200 to 599, got 'abc'"),
        ("status=101", "200 to 599"),
        ("status=204@login", "204 carries no body"),
        ("status=205", "205 carries no body"),
        ("status=304", "304 carries no body"),
        ("cut=1@text", "@stream only"),
        ("status=500@nowhere", "unknown endpoint"),
        ("status=500#0", "counted from 1"),
        ("status=500#3-2", "empty range"),
        ("newline=crcr", "lf, crlf or cr"),
        ("envelope=meh", "quota"),
        ("status = 500", "expected KIND"),
    ],
)
def test_bad_fault_specs_are_refused_clearly(spec: str, message: str) -> None:
    with pytest.raises(g.LocalProtocolError, match=message):
        g.server.parse_fault(spec)


def test_fault_selection_counts_requests_per_endpoint() -> None:
    fault = g.server.parse_fault("status=503@text#2-3")
    assert [fault.applies("text", n) for n in (1, 2, 3, 4)] == [False, True, True, False]
    assert not fault.applies("login", 2)
    assert parse_faults(["cut=1", fault]) == (g.server.parse_fault("cut=1"), fault)
