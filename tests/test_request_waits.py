"""The request path's short cuts keep the protocol's behaviour.

* ``ClientConnection.request_sent`` says whether the answer's first bytes are
  still to come (the drivers then read without asking ``next_events``): it
  must say no when bytes or the server's EOF are in hand already, or a driver
  would wait on a read for an answer it holds.
* The drivers take a kept-alive connection and claim a chat's token without a
  coroutine each when nothing has to wait; a dead kept-alive connection is
  still closed and replaced, and a token still serves 5 chats.

The drivers run over scripted streams (no sockets): every read must find an
answer the script queued, so a driver that reads when it should not fails
at once instead of waiting.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import cast

import pytest

import gptalk_proto as g
from gptalk_transports import AsyncClient, Client, ConnectError
from gptalk_transports._backends.base import AsyncByteStream, SyncByteStream
from gptalk_transports._handshake import RequestOptions

FP = "0123456789abcdef" * 2
EXPIRES = 4102444800


def _json_response(obj: object) -> bytes:
    body = json.dumps(obj).encode()
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


LOGIN = _json_response({"code": 0, "data": {"token": "t" * 32, "expires_at": EXPIRES}})
TEXT = _json_response({"code": 0, "data": {"token": "s" * 16}})
_EVENT = b'data: {"content":"hi"}\n\n'
_DONE = b"data: [DONE]\n\n"
STREAM = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    + b"%x\r\n%s\r\n" % (len(_EVENT), _EVENT)
    + b"%x\r\n%s\r\n0\r\n\r\n" % (len(_DONE), _DONE)
)


def _answer(request: bytes) -> bytes:
    if request.startswith(b"POST /api/chatgpt/user/login "):
        return LOGIN
    if request.startswith(b"POST /api/chatgpt/chatapi/text "):
        return TEXT
    assert request.startswith(b"GET /api/chatgpt/chatapi/stream?token=")
    return STREAM


class Script:
    """What the scripted streams of one client saw and did."""

    def __init__(self, *, early: bool = False) -> None:
        #: Answer the text request and the stream request in one read (a
        #: server that answers ahead): the stream's answer is then in hand
        #: before the stream request goes out.
        self.early = early
        self.requests: list[bytes] = []
        self.opened: list[ScriptedStream] = []
        #: The stream answer's end ("0\r\n\r\n") in a read of its own, after
        #: the [DONE] event's: the driver must read on to keep the connection.
        self.split_end = False
        #: Bytes after the stream answer's end (no request asked for them):
        #: the connection must not be kept.
        self.trailing = b""
        #: Stream reads wait for the other chat's (blocking: two threads meet
        #: here, so both hold a connection at once).
        self.rendezvous: threading.Barrier | None = None
        #: Reads yield to the loop first (asyncio: chats then overlap).
        self.suspend = False


class ScriptedStream:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.queued: list[bytes] = []
        self.dead = False
        self.closed = 0
        self.sent = 0

    def _sent(self, data: bytes) -> None:
        assert not self.dead, "a request went out on a connection the server had closed"
        self.script.requests.append(data)
        self.sent += 1
        if self.script.early and data.startswith(b"GET /api/chatgpt/chatapi/stream"):
            return  # answered with the text request's answer already
        answer = _answer(data)
        if self.script.early and answer is TEXT:
            answer += STREAM
        if answer is STREAM and self.script.split_end:
            self.queued += [STREAM[: -len(b"0\r\n\r\n")], b"0\r\n\r\n"]
            return
        if answer is STREAM:
            answer += self.script.trailing
        self.queued.append(answer)

    def _received(self) -> bytes:
        assert self.queued, "a read with no answer due: the driver held one already"
        return self.queued.pop(0)

    def is_readable(self) -> bool:
        return self.dead


class AsyncScriptedStream(ScriptedStream):
    async def send_all(self, data: bytes, timeout: float | None) -> None:
        self._sent(data)

    async def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        if self.script.suspend:
            await asyncio.sleep(0)
        return self._received()

    async def aclose(self) -> None:
        self.closed += 1


class SyncScriptedStream(ScriptedStream):
    def send_all(self, data: bytes, timeout: float | None) -> None:
        self._sent(data)

    def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        rendezvous = self.script.rendezvous
        if rendezvous is not None and self.queued and self.queued[0] is STREAM:
            rendezvous.wait()
        return self._received()

    def close(self) -> None:
        self.closed += 1


class AsyncScriptedConnector:
    def __init__(self, script: Script) -> None:
        self.script = script

    @property
    def request_options(self) -> RequestOptions:
        return RequestOptions("example.test")

    async def connect(self, timeout: float | None) -> AsyncByteStream:
        stream = AsyncScriptedStream(self.script)
        self.script.opened.append(stream)
        return cast(AsyncByteStream, stream)  # the methods a client calls


class SyncScriptedConnector:
    def __init__(self, script: Script) -> None:
        self.script = script

    @property
    def request_options(self) -> RequestOptions:
        return RequestOptions("example.test")

    def connect(self, timeout: float | None) -> SyncByteStream:
        stream = SyncScriptedStream(self.script)
        self.script.opened.append(stream)
        return cast(SyncByteStream, stream)  # the methods a client calls


def _chats(
    blocking: bool, script: Script, count: int, between: Callable[[int], None] | None = None
) -> tuple[list[str], int]:
    """``count`` chats one after the other; ``between(i)`` runs before chat i."""
    if blocking:
        with Client("http://example.test", connector=SyncScriptedConnector(script)) as client:
            replies = []
            for i in range(count):
                if between is not None:
                    between(i)
                replies.append(client.chat("hello"))
            return replies, client.connections_opened

    async def main() -> tuple[list[str], int]:
        connector = AsyncScriptedConnector(script)
        async with AsyncClient("http://example.test", connector=connector) as client:
            replies = []
            for i in range(count):
                if between is not None:
                    between(i)
                replies.append(await client.chat("hello"))
            return replies, client.connections_opened

    return asyncio.run(main())


BOTH = pytest.mark.parametrize("blocking", [False, True], ids=["asyncio", "blocking"])


# -- the core -------------------------------------------------------------------------


def _conn() -> g.ClientConnection:
    chat = g.Chat("hello", credentials=g.Credentials(), fingerprint=FP)
    return g.ClientConnection(chat, host="example.test")


def _to_text_sent(conn: g.ClientConnection) -> None:
    assert conn.next_event() is g.SEND_REQUEST
    conn.send(now=1000.0)  # the login
    assert conn.request_sent() is True
    assert conn.next_event() is g.NEED_DATA
    conn.receive_data(LOGIN)
    assert type(conn.next_event()) is g.LoggedIn
    assert conn.next_event() is g.SEND_REQUEST
    conn.send(now=1000.0)  # the text request


def test_request_sent_says_a_fresh_answer_is_awaited() -> None:
    conn = _conn()
    _to_text_sent(conn)
    assert conn.request_sent() is True
    assert conn.next_event() is g.NEED_DATA


def test_request_sent_says_no_when_the_answer_came_ahead() -> None:
    # The text response and the stream response in one read: the stream's
    # answer is in hand when its request goes out.
    conn = _conn()
    _to_text_sent(conn)
    assert conn.request_sent() is True
    conn.receive_data(TEXT + STREAM)
    assert conn.next_event() is g.SEND_REQUEST
    conn.send(now=1000.0)
    assert conn.request_sent() is False
    events = conn.next_events()
    assert isinstance(events, list)
    assert [type(e) for e in events] == [g.TextDelta, g.ChatDone]


def test_request_sent_says_no_after_the_servers_eof() -> None:
    conn = _conn()
    _to_text_sent(conn)
    conn.receive_data(b"")  # closed before the request was even finished
    assert conn.request_sent() is False
    with pytest.raises(g.RemoteProtocolError):
        conn.next_event()


def test_request_sent_says_no_while_events_are_held() -> None:
    # Not a driver's order (it takes every event before sending), but the
    # answer must hold anyway: an event still to take is no NEED_DATA.
    conn = _conn()
    assert conn.next_event() is g.SEND_REQUEST
    conn.send(now=1000.0)
    conn.request_sent()
    conn.receive_data(LOGIN)
    assert conn.chat.next_event() is g.NEED_DATA  # the login's body not read yet
    conn.chat.receive_response(200, [(b"content-type", b"application/json")])
    assert conn.chat.waiting is False


# -- the drivers ------------------------------------------------------------------------


@BOTH
def test_an_answer_in_hand_is_read_without_waiting(blocking: bool) -> None:
    script = Script(early=True)
    replies, opened = _chats(blocking, script, 2)
    assert replies == ["hi", "hi"]
    assert opened == 1


@BOTH
def test_a_dead_kept_alive_connection_is_closed_and_replaced(blocking: bool) -> None:
    script = Script()

    def kill_idle(i: int) -> None:
        if i == 1:
            script.opened[0].dead = True  # the server closed it while idle

    replies, opened = _chats(blocking, script, 3, kill_idle)
    assert replies == ["hi"] * 3
    assert opened == 2
    first, second = script.opened
    assert first.closed == 1
    # Chat 1: login, text, stream on the first; chats 2 and 3 on the second
    # (no request went out on the dead one: _sent asserts it).
    assert (first.sent, second.sent) == (3, 2 + 2)


@BOTH
def test_dead_kept_alive_connections_are_skipped_for_a_good_one(blocking: bool) -> None:
    # Two chats at once leave two kept-alive connections; the one released
    # last (taken first) dies: the next chat closes it and takes the other.
    script = Script()
    if blocking:
        script.rendezvous = threading.Barrier(2, timeout=30)
        with Client("http://example.test", connector=SyncScriptedConnector(script)) as client:
            replies: list[str] = []
            threads = [
                threading.Thread(target=lambda: replies.append(client.chat("hello")))
                for _ in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            script.rendezvous = None
            idle = client._pool._idle
            assert len(idle) == 2
            dead = cast(ScriptedStream, idle[-1])
            dead.dead = True
            replies.append(client.chat("hello"))
            opened = client.connections_opened
    else:
        script.suspend = True

        async def main() -> tuple[list[str], int, ScriptedStream]:
            connector = AsyncScriptedConnector(script)
            async with AsyncClient("http://example.test", connector=connector) as client:
                replies = list(await asyncio.gather(client.chat("hello"), client.chat("hello")))
                idle = client._pool._idle
                assert len(idle) == 2
                dead = cast(ScriptedStream, idle[-1])
                dead.dead = True
                replies.append(await client.chat("hello"))
                return replies, client.connections_opened, dead

        replies, opened, dead = asyncio.run(main())
    assert replies == ["hi"] * 3
    assert opened == 2
    assert dead.closed == 1
    # Login, text and stream for the first two chats, text and stream for the
    # third: none of them on the dead connection (_sent asserts it).
    assert sum(stream.sent for stream in script.opened) == 3 + 2 + 2


@BOTH
def test_a_reply_whose_end_comes_in_a_later_read_keeps_its_connection(blocking: bool) -> None:
    script = Script()
    script.split_end = True
    replies, opened = _chats(blocking, script, 3)
    assert replies == ["hi"] * 3
    assert opened == 1
    assert all(not stream.queued for stream in script.opened)  # every end was read


@BOTH
def test_a_reply_with_bytes_after_its_end_gives_up_its_connection(blocking: bool) -> None:
    script = Script()
    script.trailing = b"HTTP/1.1 200 OK\r\n"
    replies, opened = _chats(blocking, script, 3)
    assert replies == ["hi"] * 3
    assert opened == 3
    assert [stream.closed for stream in script.opened] == [1, 1, 1]


@BOTH
def test_a_token_serves_five_chats_then_a_login(blocking: bool) -> None:
    script = Script()
    replies, opened = _chats(blocking, script, 11)
    assert replies == ["hi"] * 11
    assert opened == 1
    logins = [
        n
        for n, request in enumerate(r for r in script.requests if not r.startswith(b"GET"))
        if request.startswith(b"POST /api/chatgpt/user/login ")
    ]
    # POSTs: login, text x5, login, text x5, login, text: logins at 0, 6 and 12.
    assert logins == [0, 6, 12]


@BOTH
def test_a_dead_kept_alive_connection_is_closed_once_when_its_replacement_fails(
    blocking: bool,
) -> None:
    # Found: the chat held the dead connection take() gave while acquire()
    # closed it and connected anew; the connect failed, and the chat's
    # cleanup closed the dead one a second time (a stream's close is not
    # promised to be idempotent: a connector's own streams may count it).
    script = Script()
    failing = False

    class Failing(SyncScriptedConnector):
        def connect(self, timeout: float | None) -> SyncByteStream:
            if failing:
                raise ConnectError("refused")
            return super().connect(timeout)

    class AsyncFailing(AsyncScriptedConnector):
        async def connect(self, timeout: float | None) -> AsyncByteStream:
            if failing:
                raise ConnectError("refused")
            return await super().connect(timeout)

    def chats() -> None:
        nonlocal failing
        if blocking:
            with Client("http://example.test", connector=Failing(script)) as client:
                assert client.chat("hello") == "hi"
                script.opened[0].dead = True  # the server closed it while idle
                failing = True
                with pytest.raises(ConnectError):
                    client.chat("hello")
            return

        async def main() -> None:
            nonlocal failing
            async with AsyncClient("http://example.test", connector=AsyncFailing(script)) as client:
                assert await client.chat("hello") == "hi"
                script.opened[0].dead = True  # the server closed it while idle
                failing = True
                with pytest.raises(ConnectError):
                    await client.chat("hello")

        asyncio.run(main())

    chats()
    [dead] = script.opened
    assert dead.closed == 1
