"""Adversarial cases for the extends parser's 512-byte thresholds, the
decoder's Extension as its last value, and the media-type and header caches.

A hostile server aims at EXTENDS_LONG_LINE (512) and LONG_LINE (2048): lines
one below, at and one above each, short and long lines alternating, values
that shrink or stop extending, values extended by a piece that splits a
UTF-8 character or a JSON escape (a surrogate pair, a lone surrogate, ``\\\\``,
``\\"``), CR/LF/CRLF mixed, other fields between, a BOM.  The parser with a
grower handing over Extensions must give the reference parser's events (fed
whole, byte by byte, at random splits), and the chat the reference's text.
Costs are bounded by counts (characters decoded in full, texts joined),
never by time.  Bounded by seeds.
"""

from __future__ import annotations

import gc
import json
import random

import pytest

import gptalk_proto as g
from gptalk_proto import _wire
from gptalk_proto._content import ContentDecoder
from gptalk_proto.sse import _media
from gptalk_proto.sse._growing import Extension
from gptalk_proto.sse._lines import EXTENDS_LONG_LINE, LONG_LINE
from gptalk_proto.testing._reference_sse import reference_parse
from gptalk_transports import DeadlineExceeded, RetryPolicy, Timeout
from gptalk_transports._server.refserver import make_service, serve_in_thread

from . import clients
from .sse_cases import bytewise
from .test_adv_growing_blocks import _chunkings
from .test_chat_extensions import _HEAD, _run_chat
from .test_credentials_content import reference_changes
from .test_growing_blocks import _outcome, _parser

_PREFIX = b'data: {"content": "'
_CLOSE = b'"}'
# Pieces a value is extended by: whole characters and escapes, and pieces
# that split one (a UTF-8 character's bytes, an escape's halves, a surrogate
# pair's halves, a lone surrogate).
_PIECES = [
    b"ab",
    b"\xc3\xa9",
    b"\xc3",
    b"\xa9",
    b"\xe2\x9c",
    b"\x93",
    b"\xf0\x9f\x98\x80",
    b"\\u00e9",
    b"\\u00",
    b"e9",
    b"\\ud83d",
    b"\\ude00",
    b"\\ud83d\\ude00",
    b"\\\\",
    b'\\"',
    b"\\",
    b'"',
    b"x" * 40,
]
_FIELDS = [b"id: 7", b"event: x", b": c", b"retry: 5", b"data:nospace", b"id"]
# Line lengths (with "data: ", without the line end) a value is cut or padded to.
_TARGETS = [
    EXTENDS_LONG_LINE - 1,
    EXTENDS_LONG_LINE,
    EXTENDS_LONG_LINE + 1,
    LONG_LINE - 1,
    LONG_LINE,
    LONG_LINE + 1,
    40,
]


def _sized(body: bytes, size: int) -> bytes:
    """``body`` cut or padded (with ``"caf\u00e9 "``) so that its line is ``size`` bytes."""
    want = size - len(_PREFIX) - len(_CLOSE)
    while len(body) < want:
        body += "caf\u00e9 ".encode()
    return body[:want]


def _stream(rng: random.Random) -> tuple[bytes, list[int]]:
    """A stream of data lines around the thresholds (now and then two to an
    event), and its line ends."""
    kind = rng.choice(["lf", "crlf", "cr", "mixed"])

    def end() -> bytes:
        if kind == "mixed":
            return rng.choice([b"\n", b"\r\n", b"\r"])
        return {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}[kind]

    out = [b"\xef\xbb\xbf"] if rng.random() < 0.15 else []
    ends: list[int] = []
    body = _sized(b"", rng.choice(_TARGETS))
    alternate = rng.random() < 0.3  # short and long lines in turn
    for n in range(rng.randint(3, 16)):
        step = rng.random()
        if alternate:
            body = _sized(body, (40, EXTENDS_LONG_LINE + rng.randint(-1, 1))[n % 2])
        elif step < 0.55:
            body += rng.choice(_PIECES)  # extends (by a hostile piece, maybe)
        elif step < 0.7:
            body = _sized(body, rng.choice(_TARGETS))  # to a threshold: shrinks or grows
        elif step < 0.8:
            body = body[: -rng.randint(1, 3)]  # shrinks by a byte or a few
        elif step < 0.9:
            out.append(rng.choice(_FIELDS) + end())
        # else: the same value again (stops extending)
        out.append(_PREFIX + body + _CLOSE + end())
        ends.append(sum(map(len, out)))
        more = rng.random()
        if more < 0.1:
            out.append(b"data: " + body[: rng.randint(0, 30)] + end())  # a second line
        elif more < 0.15:
            continue  # no blank line: the next value's line joins this event
        out.append(end())
    return b"".join(out), ends


@pytest.mark.parametrize("block", range(4))
def test_streams_around_512_equal_the_reference(block: int) -> None:
    for seed in range(block * 75, block * 75 + 75):
        rng = random.Random(seed)
        stream, ends = _stream(rng)
        events, last_id, _ = reference_parse(stream)
        expected = (events, last_id, None)
        # Cuts up to two bytes before a line end, reads about the new threshold.
        chunkings = _chunkings(rng, stream, ends, (-2, -1, 0, 1), (511, 512, 513, 2048, 4096))
        if seed % 15 == 0:
            chunkings.append(bytewise(stream))
        for chunks in chunkings:
            for lazy in (False, True):
                got = _outcome(_parser(extensions=True), chunks, lazy)
                assert got == expected, (seed, [len(c) for c in chunks], lazy)


def _datas(rng: random.Random) -> list[str]:
    """Cumulative GPTalk datas around the thresholds, hostile pieces among them."""
    body = _sized(b"", rng.choice(_TARGETS[:3]))
    datas = []
    for _ in range(rng.randint(5, 30)):
        step = rng.random()
        if step < 0.75:
            body += rng.choice(_PIECES[:3] + _PIECES[7:] if rng.random() < 0.3 else [b"q", b"ab"])
        elif step < 0.85:
            body = _sized(body, rng.choice(_TARGETS))
        elif step < 0.95:
            body = body[: -rng.randint(1, 3)]
        datas.append((_PREFIX[6:] + body + _CLOSE).decode("utf-8", "replace"))
    return datas


def _merged(changes: list[object]) -> list[object]:
    # The changes with each run of deltas as one (the chat sends a read's
    # deltas as they come, the reference one per event), and "error" for an
    # error (the reference's marker, the chat's exception).
    out: list[object] = []
    for change in changes:
        if type(change) is g.TextDelta:
            if out and type(out[-1]) is str and out[-1] != "error":
                out[-1] += change.text
            else:
                out.append(change.text)
        elif type(change) is g.TextRewritten:
            out.append(change)
        elif change == "error" or isinstance(change, g.GPTalkError):
            out.append("error")
    return out


def _chat_body(datas: list[str], end: bytes) -> bytes:
    body = b"".join(b"data: " + d.encode() + end + end for d in datas) + b"data: [DONE]" + end + end
    pieces = [body[i : i + 7000] for i in range(0, len(body), 7000)]
    return _HEAD + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@pytest.mark.parametrize("block", range(3))
def test_the_chat_around_512_gives_the_reference_text(block: int) -> None:
    # ClientConnection end to end, at read sizes around the thresholds and
    # byte by byte now and then: the text (and an error) of a full decode
    # per event.
    for seed in range(block * 40, block * 40 + 40):
        rng = random.Random(seed)
        datas = _datas(rng)
        want = _merged(reference_changes(datas))
        stream = _chat_body(datas, rng.choice([b"\n", b"\r\n"]))
        step = 1 if seed % 20 == 0 else rng.choice([100, 511, 512, 513, 2049, 8192])
        reads = [stream[i : i + step] for i in range(0, len(stream), step)]
        chat = g.Chat("hi", credentials=g.Credentials(), fingerprint="0" * 32)
        seen = _run_chat(chat, stream, reads)
        assert _merged(seen) == want, (seed, step)


def _decode_cost(
    datas: list[str], extensions: bool, monkeypatch: pytest.MonkeyPatch, read: int = 4096
) -> tuple[list[object], int, int]:
    # The changes of the chat's way (one decode_into per read), the
    # characters decoded in full, and those joined from Extensions.
    cost = [0, 0]
    reload = ContentDecoder._reload
    text = Extension.text

    def counted_reload(self: ContentDecoder, data: str) -> object:
        cost[0] += len(data)
        return reload(self, data)

    def counted_text(self: Extension) -> str:
        joined = text(self)
        cost[1] += len(joined)
        return joined

    monkeypatch.setattr(ContentDecoder, "_reload", counted_reload)
    monkeypatch.setattr(Extension, "text", counted_text)
    stream = b"".join(b"data: " + d.encode() + b"\n\n" for d in datas)
    parser = g.SSEParser(growing_tail=ContentDecoder.growing_tail)
    decoder = ContentDecoder()
    if extensions:
        assert parser._grower is not None
        decoder.follow_extensions(parser._grower)
    out: list[object] = []
    for start in range(0, len(stream), read):
        decoder.decode_into([e.data for e in parser.feed(stream[start : start + read])], out)
    monkeypatch.undo()
    return out, cost[0], cost[1]


@pytest.mark.parametrize("shape", ["split-pairs", "alternate-512", "lone-surrogates", "growing"])
def test_the_extends_way_decodes_no_more_than_the_plain_way(
    shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Streams that defeat the proof at every step or every other: the
    # extends parser's decoder decodes in full at most what the plain
    # parser's does (plus one value), joins no more than it decodes, and a
    # growing reply between the thresholds is decoded in full once.
    base = "caf\\u00e9 \u2713 " * (EXTENDS_LONG_LINE // 12)
    bodies: list[str] = []
    body = base
    for n in range(300):
        if shape == "split-pairs":
            body += "\\ud83d" if n % 2 == 0 else "\\ude00"
        elif shape == "alternate-512":
            body += "ab"
            bodies.append(base if n % 2 else body)  # back to the start, then on
            continue
        elif shape == "lone-surrogates":
            body += "\\ude00" if n % 3 else "x"
        else:
            body += "q\u00e9"
        bodies.append(body)
    datas = ['{"content": "' + b + '"}' for b in bodies]
    want = reference_changes(datas)
    plain, plain_cost, none = _decode_cost(datas, False, monkeypatch)
    extends, extends_cost, joined = _decode_cost(datas, True, monkeypatch)
    assert plain == extends == want
    assert none == 0
    assert extends_cost <= plain_cost + len(datas[-1])
    # At most one join a value: no dearer than the plain parser, which
    # joins every value's text.
    assert joined <= sum(map(len, datas))
    if shape != "alternate-512":
        # Joined only for a full decode: after one, the Extensions extending
        # it are taken by the proof (each joined again, before e030a58).
        assert joined <= extends_cost
    if shape == "growing":
        assert extends_cost <= len(datas[0])


def test_known_media_types_stay_bounded_and_exact() -> None:
    # A server sending a new Content-Type in every response (odd case and
    # whitespace, parameters, long ones, bytearrays): the cache holds at
    # most MAX_KNOWN_CONTENT_TYPES values, none over its length cap, and
    # every answer is the uncached one.
    rng = random.Random(5)
    cache = _media._known_media_type
    cache.cache_clear()
    for n in range(2000):
        media = rng.choice(["Text/Event-Stream", "text/html", "APPLICATION/JSON", "a/b"])
        value = (
            " " * rng.randint(0, 3)
            + media
            + " \t" * rng.randint(0, 2)
            + (f"; charset=x{n}" if rng.random() < 0.8 else "")
            + ("; p=" + "y" * rng.randint(0, 200) if rng.random() < 0.3 else "")
        ).encode("latin-1")
        want = value.decode("latin-1").split(";", 1)[0].strip().lower()
        assert _media.media_type(value) == want
        assert _media.media_type(bytearray(value)) == want
        assert _media.media_type(value.decode("latin-1")) == want
        assert _media.is_event_stream(value) == (want == _media.EVENT_STREAM)
        info = cache.cache_info()
        assert info.currsize <= _media.MAX_KNOWN_CONTENT_TYPES
    assert info.misses > 1000  # the cache ran
    assert _media.media_type(b" T\xc9XT/X ;") == "t\xe9xt/x"  # latin-1, lowercased
    long = b"text/plain; " + b"p" * _media.MAX_KNOWN_CONTENT_TYPE_LENGTH
    before = cache.cache_info()
    assert _media.media_type(long) == "text/plain"
    assert cache.cache_info() == before  # a long value is never kept


def test_fixed_headers_stay_bounded_and_exact() -> None:
    # A user making chats with many user agents and origins: at most
    # MAX_HEADER_SETTINGS header sets kept, every request's headers those
    # the uncached way lists.
    cache = _wire._fixed_headers
    cache.cache_clear()
    extra = (("x-extra", "1"),)
    for n in range(200):
        agent, origin = f"agent/{n % 37}", f"https://o{n % 23}.example"
        common = [
            ("origin", origin),
            ("user-agent", agent),
            ("x-auth-appid", _wire.APP_ID),
            ("x-auth-openid", ""),
            ("x-auth-platform", ""),
            ("x-auth-timestamp", str(1_700_000_000 + n)),
        ]
        login = _wire.login_request(
            "0" * 32,
            now=1_700_000_000 + n + 0.9,
            user_agent=agent,
            origin=origin,
            extra_headers=extra,
        )
        assert login.headers == (
            ("accept", "*/*"),
            ("content-type", "application/json"),
            *common,
            *extra,
        )
        stream = _wire.stream_request(
            "tok", now=1_700_000_000 + n, user_agent=agent, origin=origin, extra_headers=extra
        )
        assert stream.headers == (("accept", "text/event-stream"), *common, *extra)
        assert type(login) is g.Request
        assert login.kind == "login"
        assert cache.cache_info().currsize <= _wire.MAX_HEADER_SETTINGS
    assert cache.cache_info().misses > 100


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", clients.KINDS)
@pytest.mark.parametrize("step", ["login", "stream"])
def test_a_total_deadline_shorter_than_the_read_timeout_ends_a_stalled_read(
    kind: str, step: str, no_leaks: None
) -> None:
    # The driver's inlined check (what _Limits.beyond said) must still send
    # a read to run() when the total deadline comes first: a server that
    # never answers ends in DeadlineExceeded, not in the read timeout's
    # ReadTimeout (thirty times later) nor a hang.
    service = make_service(faults=[f"stall=60@{step}"])
    timeout = Timeout(connect=5, read=30, total=1)
    with serve_in_thread(service) as url, pytest.raises(DeadlineExceeded):
        clients.stream(kind, url, timeout=timeout, retry=RetryPolicy(retries=0))


def _live_extensions() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is Extension)


def test_typed_events_extending_each_other_keep_no_chain_alive() -> None:
    # A hostile server's events of another type (not reply content: the chat
    # skips them), each extending the one before, now and then a message
    # event among them: the grower's last value held the last of them, each
    # the one before, with their piece lists (about a thirtieth of what the
    # server sent, kept for the whole stream).  The chat cuts their links:
    # a few Extensions alive at any time, and the deltas are the reference's.
    login = json.dumps({"code": 0, "data": {"token": "t" * 32, "expires_at": 4102444800}})
    text = json.dumps({"code": 0, "data": {"token": "stream-token"}})
    body = "caf\u00e9 " * 120
    datas: list[str] = []
    events: list[bytes] = []
    for n in range(400):
        body += "abcde \u2713 "
        data = '{"content": "' + body + '"}'
        if n in (10, 200, 399):
            datas.append(data)
            events.append(b"data: " + data.encode() + b"\n\n")
        else:
            # (The type in a read of its own: the data line then comes alone,
            # handed over as an Extension.)
            events += [b"event: x\n", b"data: " + data.encode() + b"\n\n"]
    events.append(b"data: [DONE]\n\n")
    reads = [_HEAD] + [b"%x\r\n%s\r\n" % (len(e), e) for e in events] + [b"0\r\n\r\n"]
    conn = g.ClientConnection(
        g.Chat("hi", credentials=g.Credentials(), fingerprint="0" * 32), host="x"
    )
    pending: list[bytes] = []
    seen: list[object] = []
    alive: list[int] = []
    fed = 0
    while not any(type(e) is g.ChatDone for e in seen):
        got = conn.next_event()
        if got is g.NEED_DATA:
            chunk = pending.pop(0)
            conn.receive_data(chunk)
            if chunk in reads:
                fed += 1
                if fed % 50 == 0:
                    alive.append(_live_extensions())
        elif got is g.SEND_REQUEST:
            line = conn.send(now=1_700_000_000).split(b"\r\n", 1)[0]
            if b"/login" in line or b"/text" in line:
                answer = login if b"/login" in line else text
                pending.append(
                    b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(answer), answer.encode())
                )
            else:
                pending += reads
        else:
            seen.append(got)
    assert len(alive) >= 7
    assert max(alive) <= 4, alive
    assert _merged(seen) == _merged(reference_changes(datas))


def test_extensions_after_a_skipped_one_are_proved_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # A typed event (skipped, as the chat skips it) between message events
    # extending each other: the next message Extension goes the general way
    # (its before is not the decoder's last), and the decoder then keeps that
    # Extension as its last value, so the ones after it are taken by the
    # proof: the values joined are about one, not one per event (the whole
    # reply again at each: quadratic).
    joined = [0]
    text = Extension.text

    def counting(self: Extension) -> str:
        whole = text(self)
        joined[0] += len(whole)
        return whole

    monkeypatch.setattr(Extension, "text", counting)
    parser = g.SSEParser(growing_tail=ContentDecoder.growing_tail)
    decoder = ContentDecoder()
    assert parser._grower is not None
    decoder.follow_extensions(parser._grower)
    body = "caf\u00e9 " * 120
    datas: list[str] = []
    out: list[object] = []
    for n in range(300):
        body += "ab \u2713 "
        data = '{"content": "' + body + '"}'
        if n == 5:
            assert parser.feed(b"event: x\n") == []
        else:
            datas.append(data)
        events = parser.feed(b"data: " + data.encode() + b"\n\n")
        assert len(events) == 1
        decoder.release(events)
        decoder.decode_into([e.data for e in events if e.event == "message"], out)
        if n == 6:
            handed: object = events[0].data
            assert type(handed) is Extension  # (the case at hand)
    assert out == reference_changes(datas)
    assert 0 < joined[0] <= 2 * len(datas[-1])
