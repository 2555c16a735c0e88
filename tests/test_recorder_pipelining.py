"""The recorder files each response under its own request, also when the
client pipelines (RFC 9112 section 9.3: sends requests before the responses
to the earlier ones came back).  Sans IO: the recorder is fed what a
transport or the recording proxy would feed it, cut at random places."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_proto import cassette as gc

_LENGTH = (
    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'
)
_EVENTS = [b'data: {"content":"a"}\n\n', b'data: {"content":"ab"}\n\n']
_CHUNKED = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    + b"".join(b"%x\r\n%s\r\n" % (len(event), event) for event in _EVENTS)
    + b"0\r\n\r\n"
)
_EMPTY = b"HTTP/1.1 204 No Content\r\n\r\n"
_HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n"  # no body: a HEAD's answer
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n" + _LENGTH

#: (method, the whole response) pairs a server may answer with.
ANSWERS = [
    ("GET", _LENGTH),
    ("GET", _CHUNKED),
    ("POST", _EMPTY),
    ("HEAD", _HEAD),
    ("POST", _CONTINUE),
]


def _request(method: str, number: int) -> bytes:
    return b"%s /r%d HTTP/1.1\r\nhost: up\r\n\r\n" % (method.encode(), number)


def _cuts(draw: st.DrawFn, data: bytes) -> list[bytes]:
    points = sorted(draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=6)))
    points = [p for p in points if 0 < p < len(data)]
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def _record(steps: list[tuple[str, bytes]]) -> gc.Cassette:
    recorder = gc.Recorder("http://up.example")
    connection = recorder.open_connection()
    for t, (kind, data) in enumerate(steps):
        if kind == "sent":
            recorder.sent(connection, data, t)
        else:
            recorder.received(connection, data, t)
    return recorder.cassette(recorded_at="2026-12-03T00:00:00Z", redact=False)


@st.composite
def sessions(draw: st.DrawFn) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """Requests sent in groups (a group: sent back to back before any of its
    answers), each group's answers then received at random cuts, which may
    run one answer into the next."""
    answers = draw(st.lists(st.sampled_from(ANSWERS), min_size=1, max_size=6))
    steps: list[tuple[str, bytes]] = []
    start = 0
    while start < len(answers):
        size = draw(st.integers(1, len(answers) - start))
        group = range(start, start + size)
        steps.extend(("sent", _request(answers[n][0], n)) for n in group)
        wire = b"".join(answers[n][1] for n in group)
        steps.extend(("received", piece) for piece in _cuts(draw, wire))
        start += size
    return answers, steps


@settings(max_examples=300, deadline=None)
@given(sessions())
def test_each_request_keeps_its_own_response(
    session: tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]],
) -> None:
    answers, steps = session
    cassette = _record(steps)
    got = [(i.request.target, i.response.wire) for i in cassette.interactions]
    assert got == [(f"/r{n}", wire) for n, (_, wire) in enumerate(answers)]
    # Every read's bytes are kept, in order, at its time: a read that held two
    # answers is cut in two, both at that read's time.
    received = [data for kind, data in steps if kind == "received"]
    assert b"".join(c.data for i in cassette.interactions for c in i.response.chunks) == b"".join(
        received
    )
    assert gc.Cassette.loads(cassette.dumps()) == cassette


def test_a_read_with_two_answers_is_cut_at_its_time() -> None:
    cassette = _record(
        [("sent", _request("GET", 0)), ("sent", _request("GET", 1)), ("received", _LENGTH * 2)]
    )
    first, second = (i.response.chunks for i in cassette.interactions)
    assert [(c.t, c.data) for c in first] == [(2, _LENGTH)]
    assert [(c.t, c.data) for c in second] == [(2, _LENGTH)]


def test_an_earlier_answer_the_close_ends_is_left_as_filed() -> None:
    # A body only the connection's close can end cannot be followed by a
    # second answer: the reads stay under the request they were filed under
    # (the latest), and the first request shows none, as before.
    endless = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nno length"
    cassette = _record(
        [("sent", _request("GET", 0)), ("sent", _request("GET", 1)), ("received", endless)]
    )
    assert [(i.request.target, i.response.wire) for i in cassette.interactions] == [
        ("/r1", endless)
    ]


def test_garbage_after_an_answer_is_the_next_requests() -> None:
    # What follows the first answer on the wire is the second request's
    # answer, whatever it is; not HTTP, it is left out (as an unreadable
    # answer always is), and the first keeps its own.
    cassette = _record(
        [
            ("sent", _request("GET", 0)),
            ("sent", _request("GET", 1)),
            ("received", _LENGTH + b"\x00garbage\r\n\r\n"),
        ]
    )
    assert [(i.request.target, i.response.wire) for i in cassette.interactions] == [
        ("/r0", _LENGTH)
    ]


def test_an_answer_cut_by_the_close_before_the_next_request() -> None:
    # Not pipelining: the upstream closed inside the first answer, and the
    # next request went on anew.  Each keeps what it got.
    cut = _CHUNKED[:90]
    cassette = _record(
        [
            ("sent", _request("GET", 0)),
            ("received", cut),
            ("received", b""),
            ("sent", _request("GET", 1)),
            ("received", _LENGTH),
        ]
    )
    assert [(i.request.target, i.response.wire, i.response.end) for i in cassette.interactions] == [
        ("/r0", cut, "closed"),
        ("/r1", _LENGTH, "complete"),
    ]
