"""The server machine holds what hostile requests send it: HEAD, targets
``urlsplit`` rejects, JSON nested thousands deep, and prompts whose streams
are never fetched (bounded in bytes and count, and expired); faults say what
they are.  In memory; tests/test_server_hostile.py sends the same to a live
server."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g
import gptalk_proto.server
from gptalk_proto.server._json_depth import json_depth, json_too_deep
from gptalk_proto.testing import Served, play_requests
from gptalk_transports._cli import main

NOW = 1_700_000_000.0
FINGERPRINT = "ab" * 16
DEEP = [b"[" * 5000, b'{"a":' * 3000, b"[" * 5000 + b"]" * 5000, b'{"a":' * 33 + b"1" + b"}" * 33]


def request(method: str, target: str, body: bytes | None = None, headers: str = "") -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nhost: x\r\n{headers}"
    if body is not None:
        head += f"content-length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


def login_body() -> bytes:
    return json.dumps({"fingerprint": FINGERPRINT, "platform": "fingerprint"}).encode()


def text_body(prompt: str) -> bytes:
    value = {"content": prompt, "accept": "stream", "model": "m"}
    return json.dumps(value).encode()


def serve(service: g.server.Service, raw: bytes, now: float = NOW) -> Served:
    return play_requests(g.server.ServerConnection(service), [raw], now=now)


def split(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    pairs = [line.split(": ", 1) for line in lines[1:]]
    headers = {name.lower(): value for name, value in pairs}
    return int(lines[0].split()[1]), headers, body


def login(service: g.server.Service, now: float = NOW) -> str:
    served = serve(service, request("POST", g.LOGIN_PATH, login_body()), now)
    return str(json.loads(split(served.responses[0])[2])["data"]["token"])


def text(service: g.server.Service, token: str, prompt: str, now: float = NOW) -> tuple[int, bytes]:
    auth = f"authorization: Bearer {token}\r\n"
    served = serve(service, request("POST", g.TEXT_PATH, text_body(prompt), auth), now)
    status, headers, body = split(served.responses[0])
    if status == 503:
        return status, headers["retry-after"].encode()
    return status, body


def stream_token(body: bytes) -> str:
    return str(json.loads(body)["data"]["token"])


def stream(service: g.server.Service, token: str, now: float = NOW, method: str = "GET") -> bytes:
    return serve(service, request(method, f"{g.STREAM_PATH}?token={token}"), now).responses[0]


@pytest.fixture
def service() -> g.server.Service:
    return g.server.Service(entropy=random.Random(7).randbytes)


# -- HEAD --------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/", "/nowhere?x=1", g.LOGIN_PATH, g.TEXT_PATH])
def test_head_gets_the_head_get_would_get(service: g.server.Service, target: str) -> None:
    # Pipelined after the HEAD, a GET: the HEAD's response framed no body,
    # or the GET's answer would be read as part of it.
    served = serve(service, request("HEAD", target) + request("GET", target))
    assert served.statuses == [404 if target.startswith("/n") or target == "/" else 405] * 2
    head, get = served.responses
    head_status, head_headers, head_body = split(head)
    get_status, get_headers, get_body = split(get)
    assert head_body == b""
    assert (head_status, head_headers) == (get_status, get_headers)
    assert int(head_headers["content-length"]) == len(get_body)
    if head_status == 405:
        assert head_headers["allow"] == "POST"  # RFC 9110 15.5.6: a 405 names what is allowed


def test_head_of_a_stream_leaves_the_token_for_get(service: g.server.Service) -> None:
    token = stream_token(text(service, login(service), "hi")[1])
    head = stream(service, token, method="HEAD")
    status, headers, body = split(head)
    assert (status, body) == (200, b"")
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["transfer-encoding"] == "chunked"  # as GET sends it
    assert b"data: [DONE]" in stream(service, token)
    # Used up by the GET: now HEAD and GET both get the invalid envelope's head.
    status, headers, body = split(stream(service, token, method="HEAD"))
    assert body == b""
    assert int(headers["content-length"]) == len(split(stream(service, token))[2])


def test_a_refused_head_request_gets_its_status_without_a_body(service: g.server.Service) -> None:
    raw = b"HEAD / HTTP/1.1\r\nhost: x\r\ncontent-length: 99999999\r\n\r\n"
    served = serve(service, raw)
    assert served.statuses == [413]
    assert served.closed
    assert split(served.responses[0])[2] == b""


# -- targets and JSON ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "target", ["//[x", "http://[oops/api", "http://[::1/api/chatgpt/user/login"]
)
def test_a_target_urlsplit_rejects_is_400(service: g.server.Service, target: str) -> None:
    served = serve(service, request("GET", target) + request("GET", "/"))
    assert served.statuses == [400, 404]  # and the connection goes on


@pytest.mark.parametrize("path", [g.LOGIN_PATH, g.TEXT_PATH])
@pytest.mark.parametrize("body", DEEP, ids=["list", "object", "closed-list", "object-33"])
def test_json_nested_past_the_cap_is_400(service: g.server.Service, path: str, body: bytes) -> None:
    served = serve(service, request("POST", path, body))
    assert served.statuses == [400]
    assert (
        f"deeper than {g.server.MAX_JSON_DEPTH}" in json.loads(split(served.responses[0])[2])["msg"]
    )
    assert service.counts["any"] == 0  # refused before it counts for faults


def test_json_at_the_cap_is_parsed(service: g.server.Service) -> None:
    body = b"[" * g.server.MAX_JSON_DEPTH + b"]" * g.server.MAX_JSON_DEPTH
    served = serve(service, request("POST", g.LOGIN_PATH, body))
    assert json.loads(split(served.responses[0])[2])["code"] == g.ErrorCode.BAD_REQUEST


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text('[]{}"\\x'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text('[{"}'), inner, max_size=3),
    max_leaves=30,
)


def depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_json_depth_is_exact_on_json(value: object, ascii_only: bool) -> None:
    data = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert json_depth(data) == depth(value)
    assert json_too_deep(data, 2) == (depth(value) > 2)


@pytest.mark.parametrize(
    "data",
    [
        b'"' + b"\\" * 200_001 + b"[" * 100,  # a string that never ends, with a lone backslash
        b'\\"' * 300_000,  # every quote escaped, outside any string
        b'"\\"' * 300_000,
        b"[]" * 500_000,
        b'"[' * 300_000,
    ],
    ids=["unterminated", "escaped-quotes", "quote-escapes", "flat", "half-strings"],
)
def test_json_depth_takes_a_megabyte_of_adversarial_input(data: bytes) -> None:
    # Linear work (one regular expression that cannot backtrack, then sums
    # in C); a quadratic scan would not end within the test's timeout.
    assert json_depth(data) <= data.count(b"[")


# -- pending prompts ----------------------------------------------------------------------


def capped(**caps: float) -> g.server.Service:
    return g.server.Service(entropy=random.Random(3).randbytes, **caps)  # type: ignore[arg-type]


def test_pending_prompt_bytes_never_pass_their_cap() -> None:
    service = capped(max_pending_bytes=1000, max_pending_streams=100)
    tokens = [login(service) for _ in range(10)]
    statuses = []
    for number in range(40):
        status, _ = text(service, tokens[number // 4], "p" * 299)  # 299 + len("m")
        statuses.append(status)
        assert service.pending_bytes <= 1000
    assert statuses[:3] == [200] * 3
    assert set(statuses[3:]) == {503}
    assert service.pending_bytes == 900
    assert service.pending_streams == 3


def test_the_count_cap_holds_small_prompts() -> None:
    service = capped(max_pending_streams=2)
    token = login(service)
    assert [text(service, token, "x")[0] for _ in range(4)] == [200, 200, 503, 503]
    assert service.pending_streams == 2


def test_over_the_cap_is_503_with_retry_after_and_costs_no_use() -> None:
    service = capped(max_pending_bytes=500, stream_ttl=60.0)
    token = login(service)
    first = stream_token(text(service, token, "a" * 400)[1])
    status, retry_after = text(service, token, "b" * 200, now=NOW + 15.5)
    assert (status, retry_after) == (503, b"45")  # when the first one expires
    # The refused request used none of the token's five uses.
    assert b"data: [DONE]" in stream(service, first)
    assert [text(service, token, "c")[0] for _ in range(4)] == [200] * 4
    assert json.loads(text(service, token, "c")[1])["code"] == g.ErrorCode.QUOTA_EXHAUSTED


def test_a_prompt_larger_than_the_whole_cap_is_413() -> None:
    service = capped(max_pending_bytes=100)
    assert text(service, login(service), "x" * 200)[0] == 413
    assert service.pending_bytes == 0


def test_fetching_a_stream_frees_its_prompt() -> None:
    service = capped(max_pending_bytes=1000)
    token = login(service)
    pending = stream_token(text(service, token, "é" * 300)[1])
    assert service.pending_bytes == 601  # UTF-8 bytes are counted, as they are held
    stream(service, pending)
    assert (service.pending_bytes, service.pending_streams) == (0, 0)


def test_a_prompt_comes_back_from_being_held_as_it_came() -> None:
    prompts: list[tuple[str, str]] = []

    def reply(prompt: str, model: str) -> list[str]:
        prompts.append((prompt, model))
        return ["ok"]

    service = g.server.Service(entropy=bytes, reply=reply)
    body = (
        b'{"content": "a\\ud800b\xc3\xa9\xf0\x9f\x98\x80", "accept": "stream", "model": "\\udfff"}'
    )
    auth = f"authorization: Bearer {login(service)}\r\n"
    response = serve(service, request("POST", g.TEXT_PATH, body, auth)).responses[0]
    assert (
        service.pending_bytes
        == len("a\ud800b\u00e9\U0001f600".encode("utf-8", "surrogatepass")) + 3
    )
    stream(service, stream_token(split(response)[2]))
    assert prompts == [("a\ud800b\u00e9\U0001f600", "\udfff")]


def test_stream_tokens_expire(service: g.server.Service) -> None:
    token = login(service)
    old = stream_token(text(service, token, "old")[1])
    young = stream_token(text(service, token, "young", now=NOW + 30)[1])
    later = NOW + g.server.DEFAULT_STREAM_TTL
    # At its expiry the old one is gone, before any request comes to free it;
    # the young one is still there.
    assert json.loads(split(stream(service, old, now=later))[2])["code"] == g.ErrorCode.AUTH_INVALID
    assert service.pending_streams == 1
    assert b"data: [DONE]" in stream(service, young, now=later)
    assert service.pending_bytes == 0


def test_a_clock_stepping_back_still_expires_each_token(service: g.server.Service) -> None:
    token = login(service)
    first = stream_token(text(service, token, "first", now=NOW)[1])
    second = stream_token(text(service, token, "second", now=NOW - 50)[1])  # the clock stepped back
    # The second expires before the first; asked for after that, it is refused.
    gone = stream(service, second, now=NOW + 11)
    assert json.loads(split(gone)[2])["code"] == g.ErrorCode.AUTH_INVALID
    assert b"data: [DONE]" in stream(service, first, now=NOW + 11)
    assert service.pending_bytes == 0


def test_the_same_token_twice_is_held_once() -> None:
    service = g.server.Service(entropy=bytes, max_pending_bytes=100)  # every token is zeros
    token = login(service)
    assert [text(service, token, "x" * 40)[0] for _ in range(5)] == [200] * 5
    assert (service.pending_bytes, service.pending_streams) == (41, 1)


@pytest.mark.parametrize(
    "caps",
    [
        {"max_pending_bytes": -1},
        {"max_pending_streams": -1},
        {"stream_ttl": 0},
        {"stream_ttl": math.nan},
    ],
)
def test_bad_caps_are_refused(caps: dict[str, float]) -> None:
    with pytest.raises(g.LocalProtocolError):
        g.server.Service(entropy=bytes, **caps)  # type: ignore[arg-type]


# -- faults -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [(404, "Not Found", "not found"), (503, "Service Unavailable", "service unavailable"),
     (429, "Too Many Requests", "too many requests"), (599, "", "error 599")],
)  # fmt: skip
def test_a_status_fault_says_its_own_status(status: int, reason: str, message: str) -> None:
    service = g.server.Service(entropy=bytes, faults=[f"status={status}@login"])
    response = serve(service, request("POST", g.LOGIN_PATH, login_body())).responses[0]
    assert response.startswith(f"HTTP/1.1 {status} {reason}\r\n".encode())
    assert json.loads(split(response)[2]) == {"code": status, "msg": message}


def test_serve_help_lists_every_fault_kind(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    shown = capsys.readouterr().out
    for kind in g.server.FAULT_KINDS:
        assert f"  {kind.spec}  " in shown
        assert f"[{kind.endpoint}]" in shown
