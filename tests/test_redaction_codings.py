"""Compressed bodies and redaction: no secret stays in a cassette marked
redacted because a service compressed the body that held it.

A login answer in ``Content-Encoding: gzip`` kept its token through
redaction, and lint found nothing: redaction read values in bytes that were
compressed.  Redaction now reads through gzip and deflate to find secrets,
and refuses (CassetteError) a cassette that would keep one inside a coded
body, or a body in a coding it cannot read; the recording proxy asks its
upstream for identity while it redacts, keeping the client's own
Accept-Encoding in the cassette; lint reads through the codings too.
"""

from __future__ import annotations

import gzip
import http.client
import json
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_proto.cassette import _codings as codings_module
from gptalk_proto.cassette._codings import (
    MAX_CODINGS,
    MAX_DECODED_BODY,
    DecodeBudget,
    body_codings,
    decode_body,
)
from gptalk_transports import ProxyRun, record_through_proxy_in_thread
from gptalk_transports._server.replay import serve_cassettes_in_thread

from .console import gptalk, listening
from .hostile_peer import scripted_peer
from .plugin_cases import folder, make_inner, run

pytest_plugins = ("pytester",)

TOKEN = "Tk0123456789abcdefABCDEF0123456789"
FINGERPRINT = "0123456789abcdef0123456789abcdef"
LOGIN = json.dumps({"fingerprint": FINGERPRINT, "platform": "fingerprint"}).encode()


def _login_answer(body: bytes, coding: str | None) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    if coding is not None:
        head += b"content-encoding: %s\r\n" % coding.encode()
    return head + b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)


def _token_json() -> bytes:
    return json.dumps(
        {"code": 0, "msg": "ok", "data": {"token": TOKEN, "expires_at": 2**31}}
    ).encode()


def _cassette(answer: bytes) -> g.cassette.Cassette:
    """One recorded login whose response is ``answer``, unredacted."""
    recorder = g.cassette.Recorder("http://up.example")
    number = recorder.open_connection()
    headers = [(b"host", b"up.example"), (b"content-type", b"application/json")]
    recorder.sent_request(
        number, method=b"POST", target=g.LOGIN_PATH.encode(), headers=headers, body=LOGIN, t=0.0
    )
    recorder.received(number, answer, 0.001)
    recorder.received(number, b"", 0.002)
    return recorder.cassette(recorded_at="2026-12-05T00:00:00Z", redact=False)


# -- the codings ------------------------------------------------------------------------------


def test_codings_are_read_in_the_order_applied() -> None:
    data = b"x" * 1000 + TOKEN.encode()
    both = gzip.compress(zlib.compress(data))  # deflate, then gzip
    assert body_codings([("Content-Encoding", "deflate, GZIP"), ("content-type", "a")]) == [
        "deflate",
        "gzip",
    ]
    assert decode_body(["deflate", "gzip"], both) == data
    raw = zlib.compressobj(wbits=-15)
    assert decode_body(["deflate"], raw.compress(data) + raw.flush()) == data
    # Two gzip members (a server may write one per flush).
    assert decode_body(["gzip"], gzip.compress(data) + gzip.compress(data)) == data + data
    assert body_codings([("content-encoding", "identity")]) == []
    assert decode_body(["br"], data) is None
    assert decode_body(["gzip"], b"not gzip at all") is None


def test_a_gzip_bomb_is_unreadable_not_inflated() -> None:
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = bomb.compress(b"\0" * (MAX_DECODED_BODY + 1)) + bomb.flush()
    assert len(body) < MAX_DECODED_BODY // 500
    assert decode_body(["gzip"], body) is None


def test_a_budget_bounds_what_a_pass_decodes() -> None:
    body = gzip.compress(b"x" * 1000)
    budget = DecodeBudget(2500)
    assert decode_body(["gzip"], body, budget) == b"x" * 1000
    assert decode_body(["gzip"], body, budget) == b"x" * 1000
    assert budget.left == 500
    assert decode_body(["gzip"], body, budget) is None
    assert budget.left == 500
    assert decode_body(["gzip"], body, DecodeBudget(0)) is None


def test_lint_decodes_within_one_budget_per_cassette(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codings_module, "MAX_DECODED_CASSETTE", 2500)
    one = _cassette(_login_answer(gzip.compress(b'{"msg": "%s"}' % (b"x" * 990)), "gzip"))
    three = one.extend(one).extend(one)
    findings = g.cassette.lint(three)
    assert [f for f in findings if "cannot read" in f] == [
        "interactions[2].chunks: a body in a content coding lint cannot read (gzip)"
    ]


def test_a_body_past_the_limit_is_unreadable_never_cut_at_it() -> None:
    """A stream cut short whose last input zlib consumed whole, with output
    still held (a match): output that filled the limit was taken for the
    body, its last bytes (a secret's, say) dropped without a word."""
    cut = gzip.compress(b"A" * 100_000 + TOKEN.encode())[:135]
    whole = decode_body(["gzip"], cut)
    assert whole is not None
    assert decode_body(["gzip"], cut, DecodeBudget(len(whole))) == whole
    assert decode_body(["gzip"], cut, DecodeBudget(len(whole) - 1)) is None
    flat = zlib.compress(b"A" * 100_000 + TOKEN.encode())[:-8]
    whole = decode_body(["deflate"], flat)
    assert whole is not None
    assert decode_body(["deflate"], flat, DecodeBudget(len(whole) - 1)) is None


def test_many_gzip_members_are_read_in_linear_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """zlib copies what follows a member; handed the whole rest each time,
    a body of many tiny members before a large one cost a copy of itself
    per member.  Counted: the bytes handed to zlib."""
    fed = 0
    real = zlib.decompressobj

    class Counting:
        def __init__(self, wbits: int) -> None:
            self._reader = real(wbits)

        def decompress(self, data: bytes, most: int) -> bytes:
            nonlocal fed
            fed += len(data)
            return self._reader.decompress(data, most)

        def __getattr__(self, name: str) -> object:
            return getattr(self._reader, name)

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    members = 1000
    large = gzip.compress(bytes(range(256)) * 8192, compresslevel=0)  # 2 MiB
    body = gzip.compress(b"x") * members + large
    decoded = decode_body(["gzip"], body)
    assert decoded is not None
    assert len(decoded) == members + 256 * 8192
    assert fed <= len(body) + members * 64 * 1024  # (a piece of 64 KiB at most)


def test_codings_nested_past_the_cap_are_unreadable() -> None:
    data = TOKEN.encode()
    for _ in range(MAX_CODINGS):
        data = gzip.compress(data)
    assert decode_body(["gzip"] * MAX_CODINGS, data) == TOKEN.encode()
    assert decode_body(["gzip"] * (MAX_CODINGS + 1), gzip.compress(data)) is None


def test_a_stream_cut_short_decodes_as_far_as_it_came() -> None:
    writer = zlib.compressobj(wbits=31)
    first = writer.compress(b"data: one\n\n") + writer.flush(zlib.Z_SYNC_FLUSH)
    assert decode_body(["gzip"], first) == b"data: one\n\n"


# -- redaction ------------------------------------------------------------------------------


def test_a_token_inside_a_gzip_body_is_refused_never_kept_nor_quoted() -> None:
    cassette = _cassette(_login_answer(gzip.compress(_token_json()), "gzip"))
    with pytest.raises(g.cassette.CassetteError) as info:
        g.cassette.redact(cassette)
    message = str(info.value)
    assert message.startswith("interactions[0]: the response's body holds a secret")
    assert "(gzip)" in message
    assert TOKEN not in message
    # The same answer uncompressed is redacted as before.
    plain = g.cassette.redact(_cassette(_login_answer(_token_json(), None)))
    assert TOKEN.encode() not in plain.interactions[0].response.wire


def test_a_gzip_stream_cut_inside_a_token_is_refused() -> None:
    """A recording stopped mid-stream leaves a token's first half in the
    decoded body: not the token, so it was kept inside the gzip (values
    outside codings have such pieces redacted, MIN_REDACTED_PREFIX)."""
    writer = zlib.compressobj(wbits=31)
    half = b'{"msg": "' + TOKEN[:20].encode()
    coded = writer.compress(half) + writer.flush(zlib.Z_SYNC_FLUSH)
    assert decode_body(["gzip"], coded) == half
    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-encoding: gzip\r\nconnection: close\r\n\r\n" + coded
    )
    with pytest.raises(g.cassette.CassetteError) as info:
        g.cassette.redact(_cassette(answer), [TOKEN])
    assert str(info.value).startswith("interactions[0]: the response's body holds a secret")
    assert TOKEN[:20] not in str(info.value)


def test_a_coded_body_without_secrets_is_kept_as_recorded() -> None:
    body = gzip.compress(b'{"code": 0, "msg": "nothing secret"}')
    cassette = _cassette(_login_answer(body, "gzip"))
    redacted = g.cassette.redact(cassette)
    assert redacted.interactions[0].response.wire == cassette.interactions[0].response.wire
    assert redacted.redacted


@pytest.mark.parametrize("side", ["request", "response"])
def test_a_gzip_forms_secret_field_is_refused(side: str) -> None:
    """A form's secret fields (generic profile) are found through its coding,
    as JSON fields are: a gzip OAuth request kept its client_secret, and a
    gzip form answer its access_token, in a cassette marked redacted."""
    recorder = g.cassette.Recorder(
        "https://api.example", profile=g.cassette.profile_named("generic")
    )
    number = recorder.open_connection()
    form = [(b"host", b"api.example"), (b"content-type", b"application/x-www-form-urlencoded")]
    body = b"grant_type=client_credentials&client_secret=SuperSecretValue123"
    if side == "request":
        body, form = gzip.compress(body), [*form, (b"content-encoding", b"gzip")]
    recorder.sent_request(
        number, method=b"POST", target=b"/oauth/token", headers=form, body=body, t=0.0
    )
    answer, coding = b"access_token=AT-0123456789abcdef&token_type=bearer", b""
    if side == "response":
        answer, coding = gzip.compress(answer), b"content-encoding: gzip\r\n"
    recorder.received(
        number,
        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-www-form-urlencoded\r\n%s"
        b"content-length: %d\r\n\r\n%s" % (coding, len(answer), answer),
        0.01,
    )
    with pytest.raises(g.cassette.CassetteError) as info:
        recorder.cassette(recorded_at="2026-12-05T00:00:00Z")
    message = str(info.value)
    assert message.startswith(f"interactions[0]: the {side}'s body holds a secret")
    assert "SuperSecret" not in message
    assert "AT-0123" not in message


def test_a_coding_redaction_cannot_read_is_refused() -> None:
    cassette = _cassette(_login_answer(b"\x0b\x02\x80brotli?", "br"))
    with pytest.raises(g.cassette.CassetteError, match=r"cannot read \(br\)"):
        g.cassette.redact(cassette)


def test_the_codings_a_message_names_are_escaped_cut_and_never_a_secret() -> None:
    """The codings are the cassette's text: a C1 control (CSI, which a
    terminal obeys) came out raw, thousands of names came out whole (20 KB
    lines), and a secret named as a coding was quoted."""
    hostile = b"br\x9b2J, " + b", ".join(b"x%d" % i for i in range(3000))
    cassette = _cassette(_login_answer(b"{}", hostile.decode("latin-1")))
    [finding] = [f for f in g.cassette.lint(cassette) if "cannot read" in f]
    assert "\x9b" not in finding
    assert "\\x9b2j, x0" in finding
    assert len(finding) < 400
    with pytest.raises(g.cassette.CassetteError) as info:
        g.cassette.redact(cassette)
    assert "\x9b" not in str(info.value)
    assert len(str(info.value)) < 600
    named = _cassette(_login_answer(b"{}", "gzip, My-Secret-Coding-Name"))
    with pytest.raises(g.cassette.CassetteError) as info:
        g.cassette.redact(named, ["My-Secret-Coding-Name"])
    assert "secret-coding" not in str(info.value).lower()
    assert "cannot read (named with a secret)" in str(info.value)


def test_lint_reads_through_the_coding() -> None:
    cassette = _cassette(_login_answer(gzip.compress(_token_json()), "gzip"))
    findings = g.cassette.lint(cassette)
    assert any("interactions[0].chunks (gzip)" in f for f in findings), findings
    unreadable = g.cassette.lint(_cassette(_login_answer(b"\x0b\x02\x80", "br")))
    assert any("content coding lint cannot read (br)" in f for f in unreadable), unreadable


def test_lint_reads_through_a_requests_coding() -> None:
    """Lint read coded responses only: a client that gzipped its request
    (a login's password, a fingerprint) left it unseen."""
    recorder = g.cassette.Recorder("http://up.example")
    number = recorder.open_connection()
    headers = [(b"host", b"up"), (b"content-type", b"application/json")]
    coded = [*headers, (b"content-encoding", b"gzip")]
    recorder.sent_request(
        number, method=b"POST", target=b"/a", headers=coded, body=gzip.compress(LOGIN), t=0.0
    )
    recorder.received(number, _login_answer(b"{}", None), 0.001)
    recorder.received(number, b"", 0.002)
    cassette = recorder.cassette(recorded_at="2026-12-05T00:00:00Z", redact=False)
    findings = g.cassette.lint(cassette)
    assert any(f.startswith("interactions[0].request.body (gzip): a hex run") for f in findings)
    number = recorder.open_connection()
    recorder.sent_request(
        number, method=b"POST", target=b"/a", headers=coded, body=b"\x1f\x8bcut", t=0.0
    )
    recorder.received(number, _login_answer(b"{}", None), 0.001)
    cassette = recorder.cassette(recorded_at="2026-12-05T00:00:00Z", redact=False)
    assert (
        "interactions[1].request.body: a body in a content coding lint cannot read (gzip)"
        in g.cassette.lint(cassette)
    )


# -- the recording proxy -----------------------------------------------------------------------


@pytest.mark.parametrize("identity", [True, False])
def test_the_proxy_core_forwards_identity_and_records_the_clients_header(identity: bool) -> None:
    proxy = g.cassette.ProxyRecorder("http://up.example", host="up.example", identity=identity)
    conn = proxy.connection()
    for _ in range(2):  # the second time from the remembered field lines
        [action] = conn.client_data(
            b"GET /x HTTP/1.1\r\nHost: p\r\nAccept-Encoding: gzip, br\r\nAccept: */*\r\n\r\n", 0.1
        )
        assert isinstance(action, g.cassette.ToUpstream)
        head = action.data.split(b"\r\n")
        if identity:
            assert b"Accept-Encoding: gzip, br" not in head
            assert head.count(b"accept-encoding: identity") == 1
        else:
            assert b"Accept-Encoding: gzip, br" in head
            assert b"accept-encoding: identity" not in head
        assert conn.upstream_data(b"HTTP/1.1 204 No Content\r\n\r\n", 0.2)
    cassette = proxy.cassette(recorded_at="2026-12-05T00:00:00Z", redact=False)
    for item in cassette.interactions:
        assert ("Accept-Encoding", "gzip, br") in item.request.headers
        assert ("accept-encoding", "identity") not in item.request.headers


class Upstream:
    """A login answer that the upstream compresses when the request asks
    for gzip (or ``always``, as a misbehaving service does), and the
    Accept-Encoding of each request it got."""

    def __init__(self, *, always: bool) -> None:
        self.always = always
        self.asked: list[str] = []

    def login(self, target: str, headers: tuple[tuple[str, str], ...], body: bytes) -> bytes:
        accept = ", ".join(v for n, v in headers if n.lower() == "accept-encoding")
        self.asked.append(accept)
        if self.always or "gzip" in accept:
            return _login_answer(gzip.compress(_token_json()), "gzip")
        return _login_answer(_token_json(), None)


def _login_by_hand(url: str) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    headers = {"content-type": "application/json", "accept-encoding": "gzip, deflate"}
    conn.request("POST", g.LOGIN_PATH, body=LOGIN, headers=headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def _login_through_proxy(
    peer: Upstream, **options: Any
) -> tuple[tuple[int, dict[str, str], bytes], ProxyRun]:
    """One login by hand through a recording proxy (``options`` its own) to
    ``peer``: what the client got, and the proxy's run (its cassette)."""
    with (
        scripted_peer({"login": peer.login}) as upstream,
        record_through_proxy_in_thread(upstream, trust_env=False, **options) as run,
    ):
        got = _login_by_hand(run.url)
    return got, run


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_proxy_asks_for_identity_and_keeps_the_clients_header(backend: str) -> None:
    peer = Upstream(always=False)
    (status, headers, body), run = _login_through_proxy(peer, backend=backend)
    assert peer.asked == ["identity"]
    assert status == 200
    assert "content-encoding" not in headers
    assert json.loads(body)["data"]["token"] == TOKEN
    cassette = run.cassette
    assert cassette is not None
    assert cassette.redacted
    assert TOKEN not in cassette.dumps()
    [login] = cassette.interactions
    assert ("accept-encoding", "gzip, deflate") in login.request.headers
    # The same client, sending the same header, replays it.
    with serve_cassettes_in_thread([cassette], speed=0) as url:
        status, _, body = _login_by_hand(url)
    assert status == 200
    assert len(json.loads(body)["data"]["token"]) == len(TOKEN)


def test_without_redaction_the_clients_header_goes_up_as_sent() -> None:
    peer = Upstream(always=False)
    (_, headers, body), _ = _login_through_proxy(peer, redact=False)
    assert peer.asked == ["gzip, deflate"]
    assert headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(body))["data"]["token"] == TOKEN


def test_identity_asked_for_a_cassette_redacted_later() -> None:
    # As the pytest plugin records: unredacted, redacted as it is saved.
    peer = Upstream(always=False)
    _, run = _login_through_proxy(peer, redact=False, identity=True)
    assert peer.asked == ["identity"]
    assert run.cassette is not None
    assert TOKEN not in g.cassette.redact(run.cassette).dumps()


def test_a_service_that_compresses_anyway_fails_the_recording() -> None:
    peer = Upstream(always=True)
    with (
        scripted_peer({"login": peer.login}) as upstream,
        pytest.raises(g.cassette.CassetteError, match="holds a secret inside"),
        record_through_proxy_in_thread(upstream, trust_env=False) as run,
    ):
        _login_by_hand(run.url)
    assert peer.asked == ["identity"]


def test_the_cli_proxy_says_so_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "gz.json"
    peer = Upstream(always=True)
    with scripted_peer({"login": peer.login}) as upstream:
        args = ("record", "--listen", "--no-env-proxy", "--url", upstream, "-o", str(out))
        with listening(*args, "--chats", "1") as (proxy, url):
            _login_by_hand(url)
            proxy.send_signal(2)
            assert proxy.wait(timeout=30) != 0
            assert proxy.stderr is not None
            err = proxy.stderr.read()
    assert "holds a secret inside its content coding (gzip)" in err
    assert "Traceback" not in err
    assert TOKEN not in err
    assert not out.exists()
    assert gptalk("cassette", "lint", str(out)).returncode != 0


PLUGIN_TEST = """
import http.client
import json
from urllib.parse import urlsplit

import pytest

LOGIN = {"fingerprint": "0123456789abcdef0123456789abcdef", "platform": "fingerprint"}


@pytest.mark.gptalk_cassette("gz.json")
def test_login(gptalk_replay_server):
    parts = urlsplit(gptalk_replay_server)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"content-type": "application/json", "accept-encoding": "gzip"}
    conn.request("POST", "/api/chatgpt/user/login", body=json.dumps(LOGIN), headers=headers)
    response = conn.getresponse()
    assert json.loads(response.read())["data"]["token"]
    conn.close()
"""


def test_the_plugins_recording_proxy_asks_for_identity(pytester: pytest.Pytester) -> None:
    inner = make_inner(pytester)
    inner.makepyfile(test_gz=PLUGIN_TEST)
    peer = Upstream(always=False)
    with scripted_peer({"login": peer.login}) as upstream:
        result = run(inner, "once", f"--gptalk-url={upstream}")
    result.assert_outcomes(passed=1)
    assert peer.asked == ["identity"]
    saved = (folder(inner, "test_gz") / "gz.json").read_text(encoding="utf-8")
    assert TOKEN not in saved
