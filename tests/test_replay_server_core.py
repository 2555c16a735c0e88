"""The replay server's and the recording proxy's sans-IO cores, as an
attacker drives them: bad HTTP, huge and pipelined requests, forged and
foreign tokens, more sessions than the cap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_proto.cassette import _replay_server
from gptalk_proto.cassette._replay import MAX_REPLAY_REQUEST
from gptalk_transports import load_cassette

PLAIN = load_cassette(Path(__file__).resolve().parent.parent / "cassettes" / "plain-chat.json")


Actions = list[
    g.cassette.ReplayWrite
    | g.cassette.ReplayClose
    | g.cassette.ReplayMismatch
    | g.cassette.ReplayDelivered
]


def wire(item: g.cassette.Interaction, swap: dict[bytes, bytes] | None = None) -> bytes:
    """The recorded request as bytes, with handed-out tokens swapped in."""
    request = item.request
    data = (
        f"{request.method} {request.target} HTTP/1.1\r\n".encode()
        + b"".join(f"{n}: {v}\r\n".encode() for n, v in request.headers)
        + b"\r\n"
        + request.body
    )
    for old, new in (swap or {}).items():
        data = data.replace(old, new)
    return data


def answer(
    actions: Actions,
) -> bytes:
    return b"".join(a.data for a in actions if isinstance(a, g.cassette.ReplayWrite))


def token_of(response: bytes) -> bytes:
    token: str = json.loads(response.split(b"\r\n\r\n", 1)[1])["data"]["token"]
    return token.encode()


def recorded_token(item: g.cassette.Interaction) -> bytes:
    return token_of(item.response.wire)


def refusal(
    actions: Actions,
) -> tuple[int, dict[str, object]]:
    data = answer(actions)
    head, _, body = data.partition(b"\r\n\r\n")
    assert isinstance(actions[-1], g.cassette.ReplayClose)
    return int(head.split(b" ")[1]), json.loads(body)


def login(server: g.cassette.ReplayServer) -> tuple[g.cassette.ReplayServerConnection, bytes]:
    conn = server.connection()
    return conn, token_of(answer(conn.receive_data(wire(PLAIN.interactions[0]))))


def test_a_whole_chat_in_one_pipelined_read() -> None:
    server = g.cassette.ReplayServer([PLAIN], speed=0)
    conn, token = login(server)
    text = conn.receive_data(
        wire(PLAIN.interactions[1], {recorded_token(PLAIN.interactions[0]): token})
    )
    stream_token = token_of(answer(text))
    swap = {recorded_token(PLAIN.interactions[1]): stream_token}
    actions = conn.receive_data(wire(PLAIN.interactions[2], swap))
    assert answer(actions) == PLAIN.interactions[2].response.wire
    # Matched, not yet written: played once the driver says it went out.
    assert server.unplayed() == [
        ("cassette 1", n + 1, i.kind) for n, i in enumerate(PLAIN.interactions)
    ]
    for action in text + actions:
        if isinstance(action, g.cassette.ReplayDelivered):
            conn.delivered(action)
    assert server.unplayed() == [("cassette 1", 1, "login")]  # login's was not handed back


def test_a_step_is_played_once_its_writes_went_out() -> None:
    server = g.cassette.ReplayServer([PLAIN], speed=0)
    conn = server.connection()
    actions = conn.receive_data(wire(PLAIN.interactions[0]))
    # The answer's writes, then the mark to hand back once they went out.
    assert isinstance(actions[-1], g.cassette.ReplayDelivered)
    assert all(isinstance(a, g.cassette.ReplayWrite) for a in actions[:-1])
    assert server.played() == 0
    conn.delivered(actions[-1])
    assert server.played() == 1
    assert [step for _, step, _ in server.unplayed()] == [2, 3]


def test_invalid_http_gets_400_and_a_close() -> None:
    server = g.cassette.ReplayServer([PLAIN])
    status, body = refusal(
        server.connection().receive_data(b"GET / HTTP/1.1\r\nbad header\r\n\r\n")
    )
    assert status == 400
    assert "invalid HTTP" in str(body["detail"])


def test_a_request_over_the_cap_is_refused_not_held() -> None:
    server = g.cassette.ReplayServer([PLAIN])
    # Its content-length over the cap: refused on its head, at once (not
    # after a 100 Continue asked for the body, see test_expect_continue).
    conn = server.connection()
    head = b"POST /api/chatgpt/user/login HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n"
    size = MAX_REPLAY_REQUEST + 1
    status, _ = refusal(conn.receive_data(head % size))
    assert status == 413
    assert conn.receive_data(b"more") == []
    # A chunked body, its length unsaid: refused once past the cap, not held.
    conn = server.connection()
    actions = conn.receive_data(head.replace(b"content-length: %d", b"transfer-encoding: chunked"))
    for _ in range(size // 65536 + 1):
        actions = conn.receive_data(b"10000\r\n" + b"x" * 65536 + b"\r\n")
        if actions:
            break
    status, _ = refusal(actions)
    assert status == 413
    assert conn.receive_data(b"more") == []


def test_a_forged_token_is_a_mismatch_naming_it() -> None:
    server = g.cassette.ReplayServer([PLAIN])
    forged = b"gtR99T1" + b"_" * 25
    item = PLAIN.interactions[1]
    status, body = refusal(
        server.connection().receive_data(
            wire(item, {recorded_token(PLAIN.interactions[0]): forged})
        )
    )
    assert status == g.cassette.MISMATCH_STATUS
    assert body["differences"] == [
        "the token sent was handed out by a session this server no longer holds"
    ]
    assert "no longer holds" in server.mismatches()[-1]


def test_a_token_leads_to_its_own_session_from_any_connection() -> None:
    server = g.cassette.ReplayServer([PLAIN], speed=0)
    _, first = login(server)
    _, second = login(server)
    assert first != second
    assert len(first) == len(recorded_token(PLAIN.interactions[0]))
    # The first client's text request on a third connection plays its session.
    other = server.connection()
    item = PLAIN.interactions[1]
    actions = other.receive_data(wire(item, {recorded_token(PLAIN.interactions[0]): first}))
    assert token_of(answer(actions)).startswith(b"gtR1T2")


def test_a_sent_placeholder_of_another_session_does_not_match() -> None:
    server = g.cassette.ReplayServer([PLAIN], speed=0)
    login(server)
    # Sending the recorded placeholder itself (no token of ours): a new
    # connection with no session, and no login: nothing matches.
    status, body = refusal(server.connection().receive_data(wire(PLAIN.interactions[1])))
    assert status == g.cassette.MISMATCH_STATUS
    assert body["step"] == 1


def test_sessions_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_replay_server, "MAX_REPLAY_SESSIONS", 3)
    server = g.cassette.ReplayServer([PLAIN], speed=0)
    for _ in range(3):
        login(server)
    status, body = refusal(server.connection().receive_data(wire(PLAIN.interactions[0])))
    assert status == g.cassette.MISMATCH_STATUS
    assert body["differences"] == ["too many sessions held at once"]
    assert server.sessions == 3


def test_mismatches_kept_are_bounded() -> None:
    server = g.cassette.ReplayServer([PLAIN])
    for _ in range(_replay_server.MAX_KEPT_MISMATCHES + 50):
        server.connection().receive_data(b"GET /nothing HTTP/1.1\r\nhost: x\r\n\r\n")
    assert len(server.mismatches()) == _replay_server.MAX_KEPT_MISMATCHES


@pytest.mark.parametrize("speed", [-1, float("nan"), True])
def test_bad_speeds_are_the_callers_mistake(speed: float) -> None:
    with pytest.raises(g.LocalProtocolError):
        g.cassette.ReplayServer([PLAIN], speed=speed)


def test_the_pace_is_the_recorded_one_scaled_and_capped() -> None:
    stream = PLAIN.interactions[2]
    gaps = []
    before = stream.request.t
    for chunk in stream.response.chunks:
        gaps.append(chunk.t - before)
        before = chunk.t
    for speed, cap in [(1.0, None), (2.0, None), (1.0, 0.0001)]:
        server = g.cassette.ReplayServer([PLAIN], speed=speed, max_gap=cap)
        conn, token = login(server)
        swap = {recorded_token(PLAIN.interactions[0]): token}
        stream_token = token_of(answer(conn.receive_data(wire(PLAIN.interactions[1], swap))))
        actions = conn.receive_data(
            wire(stream, {recorded_token(PLAIN.interactions[1]): stream_token})
        )
        delays = [a.delay for a in actions if isinstance(a, g.cassette.ReplayWrite)]
        want = [max(gap, 0) / speed for gap in gaps]
        if cap is not None:
            want = [min(w, cap) for w in want]
        assert delays == pytest.approx(want)


# -- the recording proxy's core ---------------------------------------------------------------


def proxy() -> g.cassette.ProxyRecorder:
    return g.cassette.ProxyRecorder(
        "https://up.example", host="up.example", url="http://127.0.0.1:9"
    )


def test_connect_is_refused_with_501() -> None:
    [action] = (
        proxy()
        .connection()
        .client_data(b"CONNECT up.example:443 HTTP/1.1\r\nhost: up.example:443\r\n\r\n", 0.0)
    )
    assert isinstance(action, g.cassette.ToClient)
    assert action.close
    assert action.data.startswith(b"HTTP/1.1 501 ")
    assert b"http://127.0.0.1:9" in action.data


def test_absolute_form_is_forwarded_and_recorded_origin_form() -> None:
    recorder = proxy()
    conn = recorder.connection()
    request = (
        b"POST http://anything.example/api/chatgpt/user/login?x=1 HTTP/1.1\r\n"
        b"Host: anything.example\r\nProxy-Authorization: Basic c2VjcmV0\r\n"
        b"Proxy-Connection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n"
    )
    [action] = conn.client_data(request, 0.5)
    assert isinstance(action, g.cassette.ToUpstream)
    assert action.data == (
        b"POST /api/chatgpt/user/login?x=1 HTTP/1.1\r\nhost: up.example\r\n"
        b"content-length: 2\r\naccept-encoding: identity\r\n\r\n{}"
    )
    response = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
    assert conn.upstream_data(response[:10], 0.6) == response[:10]
    assert conn.upstream_data(response[10:], 0.7) == response[10:]
    assert not conn.pending
    cassette = recorder.cassette(recorded_at="2026-01-01T00:00:00Z", redact=False)
    [item] = cassette.interactions
    assert item.request.target == "/api/chatgpt/user/login?x=1"
    assert [c.data for c in item.response.chunks] == [response[:10], response[10:]]


@pytest.mark.parametrize("through_a_proxy", [False, True])
def test_the_recorded_request_is_the_forwarded_one_read_back(through_a_proxy: bool) -> None:
    # The proxy hands the recorder the request it built, not its bytes to
    # parse again: what is recorded must be what a recorder reading those
    # bytes would have recorded.
    recorder = g.cassette.ProxyRecorder(
        "http://up.example",
        host="up.example:8080",
        target_prefix="http://up.example:8080" if through_a_proxy else "",
        proxy_headers=[("Proxy-Authorization", "Basic c2VjcmV0")] if through_a_proxy else [],
        identity=False,  # (identity's one header apart: see test_redaction_codings)
    )
    conn = recorder.connection()
    requests = (
        b"POST http://anything.example/api/chatgpt/user/login?x=1 HTTP/1.1\r\n"
        b"Host: anything.example\r\nX-Auth-Timestamp:  17 \r\nAccept: */*\r\n"
        b"transfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        b"GET /api/chatgpt/chatapi/stream?token=t HTTP/1.1\r\nhost: x\r\n"
        b"Authorization: Bearer abc\r\n\r\n",
        b"DELETE /a HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc",
    )
    read_back = g.cassette.Recorder("http://up.example")
    number = read_back.open_connection()
    answer = b"HTTP/1.1 204 No Content\r\n\r\n"
    for i, request in enumerate(requests):
        [action] = conn.client_data(request, i + 0.25)
        assert isinstance(action, g.cassette.ToUpstream)
        read_back.sent(number, action.data, i + 0.25)
        conn.upstream_data(answer, i + 0.5)
        read_back.received(number, answer, i + 0.5)
    stamp = "2026-01-01T00:00:00Z"
    got = recorder.cassette(recorded_at=stamp, redact=False)
    want = read_back.cassette(recorded_at=stamp, redact=False)
    assert [i.request for i in got.interactions] == [i.request for i in want.interactions]
    assert len(got.interactions) == 3


def test_pipelined_requests_past_the_cap_are_refused() -> None:
    conn = proxy().connection()
    one = b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n"
    actions = conn.client_data(one * 17, 0.0)
    assert [type(a) for a in actions] == [g.cassette.ToUpstream] * 16 + [g.cassette.ToClient]
    last = actions[-1]
    assert isinstance(last, g.cassette.ToClient)
    assert last.data.startswith(b"HTTP/1.1 429 ")


def test_invalid_http_from_the_client_is_a_400() -> None:
    [action] = proxy().connection().client_data(b"GARBAGE\r\n\r\n", 0.0)
    assert isinstance(action, g.cassette.ToClient)
    assert action.data.startswith(b"HTTP/1.1 400 ")


def test_chats_are_counted_whole_or_cut() -> None:
    recorder = proxy()
    for cut in (False, True):
        conn = recorder.connection()
        conn.client_data(
            b"GET /api/chatgpt/chatapi/stream?token=t HTTP/1.1\r\nhost: x\r\n\r\n", 0.0
        )
        body = b"data: {}\n\n"
        head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (len(body) * 2)
        conn.upstream_data(head + body, 0.1)
        if not cut:
            conn.upstream_data(body, 0.2)
        else:
            conn.upstream_data(b"", 0.2)
    assert recorder.chats == 2


def test_a_request_is_checked_as_recorded_and_read_when_the_cassette_is_built() -> None:
    """The recorder keeps a sent request's bytes and reads them into the
    cassette's request at the end; a method or target that is not ASCII is
    refused at once, as before."""
    recorder = g.cassette.Recorder("http://up.example")
    number = recorder.open_connection()
    with pytest.raises(UnicodeDecodeError):
        recorder.sent_request(number, method=b"GET", target=b"/\xff", headers=[], body=b"", t=0.0)
    headers = ((b"Host", b"x"), (b"X-A", b"\xe9"), (b"Proxy-Authorization", b"Basic c2VjcmV0"))
    at = 0.1234567
    recorder.sent_request(number, method=b"GET", target=b"/a", headers=headers, body=b"", t=at)
    recorder.received(number, b"HTTP/1.1 204 No Content\r\n\r\n", 0.5)
    [item] = recorder.cassette(recorded_at="2026-01-01T00:00:00Z", redact=False).interactions
    assert item.request.headers == (("Host", "x"), ("X-A", "\xe9"))
    assert item.request.t == 0.123457


def test_chunk_times_are_kept_to_the_microsecond() -> None:
    """A read's time is rounded when the cassette is built, as the request's
    is: read in memory or put in the store by the driver, the same times."""
    stamp = "2026-01-01T00:00:00Z"
    kept = []
    for stored in (False, True):
        recorder = g.cassette.Recorder("http://up.example")
        number = recorder.open_connection()
        recorder.sent(number, b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n", 0.0)
        for t, data in (
            (0.1234567, b"HTTP/1.1 200 OK\r\n"),
            (2.0000004, b"content-length: 0\r\n\r\n"),
        ):
            if stored:
                recorder.received_stored(number, recorder.store.put(data), t)
            else:
                recorder.received(number, data, t)
        [item] = recorder.cassette(recorded_at=stamp, redact=False).interactions
        kept.append([(c.t, c.data) for c in item.response.chunks])
    assert (
        kept[0]
        == kept[1]
        == [
            (0.123457, b"HTTP/1.1 200 OK\r\n"),
            (2.0, b"content-length: 0\r\n\r\n"),
        ]
    )
