"""The recording proxy's core remembers its clients' field lines: each block
is read once (KnownFields) and forwarded as it was the first time.  What it
forwards and records must be what a proxy that remembers nothing would."""

from __future__ import annotations

import random

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_proto.cassette._request_reader import MAX_KNOWN_BLOCKS, RequestReader

_BROWSER = (
    b"accept: */*\r\norigin: https://gptalk.net\r\nuser-agent: Mozilla/5.0 (X11; Linux x86_64)\r\n"
    b"x-auth-appid: 2229\r\nx-auth-openid: \r\nx-auth-timestamp: 1796289761\r\n"
)

#: Requests as clients send them: the same lines again and again (with and
#: without a body, a POST without a length, header case, an absolute-form
#: target, lines a proxy drops), and odd ones that h11 reads.
REQUESTS = [
    b"POST /api/chatgpt/user/login HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n"
    + _BROWSER
    + b'content-length: 13\r\n\r\n{"a": "b c"}\n',
    b"POST /api/chatgpt/chatapi/text HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n"
    + _BROWSER
    + b"authorization: Bearer tttt\r\ncontent-length: 2\r\n\r\n{}",
    b"GET /api/chatgpt/chatapi/stream?token=a HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n"
    + _BROWSER
    + b"\r\n",
    b"GET /api/chatgpt/chatapi/stream?token=b HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n"
    + _BROWSER
    + b"\r\n",
    # The same lines as the GET's: a POST gets a content-length of 0.
    b"POST /empty HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n" + _BROWSER + b"\r\n",
    b"GET /zero HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n",
    b"PUT /zero HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n",
    b"DELETE /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nX-A:\t v  w \t\r\n\r\nabc",
    b"GET http://anything.example/p?q=1 HTTP/1.1\r\nhost: anything.example\r\n"
    b"Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic c2VjcmV0\r\n\r\n",
    b"POST /chunked HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
]

ANSWER = b"HTTP/1.1 204 No Content\r\n\r\n"


def _recorder(through_a_proxy: bool, *, count_chats: bool = True) -> g.cassette.ProxyRecorder:
    return g.cassette.ProxyRecorder(
        "http://up.example",
        host="up.example:8080",
        count_chats=count_chats,
        target_prefix="http://up.example:8080" if through_a_proxy else "",
        proxy_headers=[("Proxy-Authorization", "Basic c2VjcmV0")] if through_a_proxy else [],
        # The bytes forwarded read back as what was recorded: the client's
        # Accept-Encoding goes up as sent (see test_redaction_codings).
        identity=False,
    )


def _session(rng: random.Random) -> list[list[bytes]]:
    """Connections, each the writes of a few requests: whole, two at once,
    or cut (then h11 reads them)."""
    connections = []
    for _ in range(6):
        writes = []
        for _ in range(rng.randint(1, 8)):
            request = rng.choice(REQUESTS)
            way = rng.random()
            if way < 0.6:
                writes.append(request)
            elif way < 0.8:
                writes.append(request + rng.choice(REQUESTS))
            else:
                cut = rng.randrange(1, len(request))
                writes += [request[:cut], request[cut:]]
        connections.append(writes)
    return connections


def _run(
    recorder: g.cassette.ProxyRecorder,
    connections: list[list[bytes]],
    *,
    fresh: bool,
    record_later: random.Random | None = None,
) -> list[list[bytes]]:
    """Every write through the proxy's core; what went upstream, by
    connection.  ``fresh``: each request's field lines as new (nothing
    remembered).  ``record_later``: requests are filed later (as the
    asyncio driver does): after the writes, or, at random, by whatever
    call comes next, or by the cassette; the connections' calls
    interleaved."""
    sent: list[list[bytes]] = [[] for _ in connections]
    conns = [recorder.connection() for _ in connections]
    rounds = max(map(len, connections))
    t = 0.0
    # Round by round, a write of each connection (as the proxy's clients
    # run at once).
    for step in range(rounds):
        for number, writes in enumerate(connections):
            if step >= len(writes):
                continue
            conn, data = conns[number], writes[step]
            if fresh:
                recorder._known_fields._blocks.clear()  # private: remember nothing
                for forwarded in recorder._forwarded:
                    forwarded.clear()
            t += 0.25
            actions = conn.client_data(data, t, record_later=record_later is not None)
            for action in actions:
                assert isinstance(action, g.cassette.ToUpstream)
                sent[number].append(action.data)
            if record_later is not None:
                assert len(recorder._held) == len(actions)  # private: none filed yet
            if record_later is not None and record_later.random() < 0.5:
                recorder.record_held()
            for _ in actions:
                conn.upstream_data(ANSWER, t + 0.1)
    return sent


def _requests(cassette: g.cassette.Cassette) -> list[list[tuple[object, ...]]]:
    """The requests of each connection, in order (the connections' order and
    numbers aside: _run interleaves them)."""
    by_connection: dict[int, list[tuple[object, ...]]] = {}
    for i in cassette.interactions:
        request = (i.request.method, i.request.target, i.request.headers, i.request.body)
        by_connection.setdefault(i.connection, []).append(request)
    return sorted(by_connection.values(), key=repr)


@pytest.mark.parametrize("record_later", [False, True])
@pytest.mark.parametrize("count_chats", [True, False])
@pytest.mark.parametrize("through_a_proxy", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_remembered_field_lines_forward_and_record_what_fresh_ones_do(
    seed: int, through_a_proxy: bool, count_chats: bool, record_later: bool
) -> None:
    """Without count_chats, a whole request whose lines are known takes the
    core's fast way (RequestReader.known_whole); with record_later, each
    request is filed later: the same bytes forwarded, the same cassette as
    a proxy that remembers nothing and files each request at once."""
    connections = _session(random.Random(seed))
    warm = _recorder(through_a_proxy, count_chats=count_chats)
    cold = _recorder(through_a_proxy)
    fast = 0
    known_whole = RequestReader.known_whole

    def counted(reader: RequestReader, data: bytes) -> object:
        nonlocal fast
        found = known_whole(reader, data)
        fast += found is not None
        return found

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RequestReader, "known_whole", counted)
        later = random.Random(seed) if record_later else None
        sent = _run(warm, connections, fresh=False, record_later=later)
    assert sent == _run(cold, connections, fresh=True)
    # The fast way was taken exactly where it may be.
    assert (fast > 0) == (not count_chats)
    assert len(warm._known_fields) > 0  # private: the remembered lines were used
    stamp = "2026-01-01T00:00:00Z"
    got = warm.cassette(recorded_at=stamp, redact=False)
    assert got == cold.cassette(recorded_at=stamp, redact=False)
    assert len(got.interactions) == sum(map(len, sent))
    # And a recorder reading the forwarded bytes back records the same.
    read_back = g.cassette.Recorder("http://up.example")
    for requests in sent:
        number = read_back.open_connection()
        for data in requests:
            read_back.sent(number, data, 0.0)
            read_back.received(number, ANSWER, 0.0)
    assert _requests(got) == _requests(read_back.cassette(recorded_at=stamp, redact=False))


def test_the_forwarded_lines_stay_within_their_cap() -> None:
    """One block too many empties the remembered forwarded lines (as the
    known lines): at most MAX_KNOWN_BLOCKS of each kind, the newest kept."""
    recorder = _recorder(False)
    conn = recorder.connection()
    for number in range(MAX_KNOWN_BLOCKS * 3):
        for method in (b"GET", b"POST"):
            data = b"%s / HTTP/1.1\r\nhost: x\r\nx-n: %d\r\n\r\n" % (method, number)
            [action] = conn.client_data(data, 0.0)
            assert isinstance(action, g.cassette.ToUpstream)
            assert b"x-n: %d\r\n" % number in action.data
            assert (b"content-length: 0\r\n" in action.data) == (method == b"POST")
            conn.upstream_data(ANSWER, 0.0)
        for forwarded in recorder._forwarded:  # private: the cap holds
            assert 1 <= len(forwarded) <= MAX_KNOWN_BLOCKS
        assert len(recorder._known_fields) <= MAX_KNOWN_BLOCKS  # private


def test_a_request_held_to_be_filed_later_is_filed_before_its_answer() -> None:
    """A request filed later (record_later) that the driver did not file
    itself is filed by the next call, before that call's bytes: the answer
    goes to it, and the cassette is the one of requests filed at once."""
    cassettes = []
    for record_later in (False, True):
        recorder = _recorder(False, count_chats=False)
        for data in REQUESTS[:3]:
            conn = recorder.connection()
            conn.client_data(data, 1.5, record_later=record_later)
            assert len(recorder._held) == record_later  # private: held, or filed
            conn.upstream_data(ANSWER, 1.75)
            assert not recorder._held  # private: filed first
        cassettes.append(recorder.cassette(recorded_at="2026-01-01T00:00:00Z", redact=False))
    assert [i.request.t for i in cassettes[0].interactions] == [1.5] * 3
    assert cassettes[1] == cassettes[0]
