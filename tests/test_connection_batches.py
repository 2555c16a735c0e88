"""ClientConnection.next_events: the events of next_event, taken a read at a time.

Drivers hand events on in batches (one call per read, not one per event); the
batch call must give exactly the events next_event gives one by one, in order,
with errors at the same point.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest

import gptalk_proto as g


def _response(obj: object) -> bytes:
    body = json.dumps(obj).encode()
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


LOGIN = _response({"code": 0, "data": {"token": "t" * 32, "expires_at": 4102444800}})
TEXT = _response({"code": 0, "data": {"token": "stream-token"}})
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _stream(texts: list[str], *, broken: bool = False) -> bytes:
    events = [b"data: %s\n\n" % json.dumps({"content": t}).encode() for t in texts]
    body = b"".join(_chunk(e) for e in events)
    if broken:
        return HEAD + body + b"zz\r\n"  # an illegal chunk header after the events
    return HEAD + body + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"


def _run(
    conn: g.ClientConnection,
    stream: bytes,
    reads: int,
    batched: bool,
    choose: Callable[[], bool] | None = None,
) -> list[object]:
    """Drive ``conn`` over canned responses; what the driver saw, in order
    (for ``batched``, each batch as a list; ``choose``, when given, says
    at each step whether to take a batch or one event)."""
    pending: list[bytes] = []
    seen: list[object] = []
    while True:
        try:
            batch = choose() if choose is not None else batched
            got = conn.next_events() if batch else conn.next_event()
        except g.GPTalkError as exc:
            seen.append(type(exc))
            return seen
        if got is g.NEED_DATA:
            conn.receive_data(pending.pop(0))
        elif got is g.SEND_REQUEST:
            request = conn.send(now=1_700_000_000)
            line = request[: request.index(b"\r\n")]
            if b"/login" in line:
                pending.append(LOGIN)
            elif b"/text" in line:
                pending.append(TEXT)
            else:
                step = -(-len(stream) // reads)
                pending += [stream[i : i + step] for i in range(0, len(stream), step)]
        elif got is g.PAUSED:
            return seen
        else:
            seen.append(got)


@pytest.mark.parametrize("reads", [1, 3, 17])
@pytest.mark.parametrize("broken", [False, True])
def test_batches_hold_the_events_of_next_event(
    make_chat: Callable[..., g.Chat], reads: int, broken: bool
) -> None:
    texts = ["He", "Hello", "Hello, wo", "Hello, world", "Goodbye"]  # the last rewrites
    stream = _stream(texts, broken=broken)
    one_by_one = _run(
        g.ClientConnection(make_chat(credentials=g.Credentials()), host="x"),
        stream,
        reads,
        batched=False,
    )
    batches = _run(
        g.ClientConnection(make_chat(credentials=g.Credentials()), host="x"),
        stream,
        reads,
        batched=True,
    )
    flat: list[object] = []
    for item in batches:
        if type(item) is list:
            assert item  # never an empty batch
            # ChatDone ends its batch.
            assert all(type(e) is not g.ChatDone for e in item[:-1])
            flat += item
        else:
            flat.append(item)
    assert flat == one_by_one
    assert type(one_by_one[0]) is g.LoggedIn
    if broken:
        assert one_by_one[-1] is g.StreamInterrupted
    else:
        assert one_by_one[-1] == g.ChatDone("Goodbye")
    if reads == 1:
        # One read of the whole stream: its events come in one batch.
        stream_batches = [b for b in batches if type(b) is list and type(b[0]) is not g.LoggedIn]
        assert len(stream_batches) == 1


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("reads", [1, 2, 5])
def test_single_events_and_batches_in_any_mix_hold_the_same_events(
    make_chat: Callable[..., g.Chat], seed: int, reads: int
) -> None:
    # The chat's queue is read one event at a time and handed over whole in
    # turn (next_event reads at an index; take_events gives the rest): any
    # mix of the two calls sees every event once, in order.
    texts = [("x" * n) for n in range(1, 40)]
    stream = _stream(texts)
    one_by_one = _run(
        g.ClientConnection(make_chat(credentials=g.Credentials()), host="x"),
        stream,
        reads,
        batched=False,
    )
    chooser = random.Random(seed)
    mixed = _run(
        g.ClientConnection(make_chat(credentials=g.Credentials()), host="x"),
        stream,
        reads,
        batched=False,
        choose=lambda: chooser.random() < 0.5,
    )
    flat: list[object] = []
    for item in mixed:
        if type(item) is list:
            assert item  # never an empty batch
            flat += item
        else:
            flat.append(item)
    assert flat == one_by_one
    assert one_by_one[-1] == g.ChatDone("x" * 39)
