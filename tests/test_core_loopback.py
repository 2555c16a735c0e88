"""The core over real loopback sockets, with no transport of ours in between.

Both ways to embed the client machine, each against the server machine on a
real TCP socket: the bytes level driven by a plain blocking socket, and the
exchange level driven by the standard library's http.client.
"""

from __future__ import annotations

import http.client
import random
import socket
import time
from collections.abc import Callable

import pytest

import gptalk_proto as g
import gptalk_proto.server

from .threaded_server import threaded_server

PROMPT = "Hello over loopback"


def chat_over_socket(address: tuple[str, int], chat: g.Chat) -> list[g.ChatEvent]:
    """The bytes level: a blocking socket in a loop of a few lines."""
    events: list[g.ChatEvent] = []
    conn = g.ClientConnection(chat, host=f"{address[0]}:{address[1]}")
    sock = socket.create_connection(address, timeout=10)
    try:
        while True:
            event = conn.next_event()
            if event is g.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif event is g.SEND_REQUEST:
                sock.sendall(conn.send(now=time.time()))
            elif isinstance(event, g.ReconnectNeeded):
                sock.close()
                sock = socket.create_connection(address, timeout=10)
            else:
                events.append(event)  # type: ignore[arg-type]
                if isinstance(event, g.ChatDone):
                    return events
    finally:
        sock.close()


def chat_over_http_client(address: tuple[str, int], chat: g.Chat) -> list[g.ChatEvent]:
    """The exchange level: the standard library's http.client does the HTTP."""
    events: list[g.ChatEvent] = []
    connection = http.client.HTTPConnection(*address, timeout=10)
    response = None
    try:
        while True:
            event = chat.next_event()
            if event is g.SEND_REQUEST:
                request = chat.next_request(now=time.time())
                connection.request(
                    request.method, request.target, request.body, dict(request.headers)
                )
                response = connection.getresponse()
                chat.receive_response(response.status, response.getheaders())
            elif event is g.NEED_DATA:
                assert response is not None
                data = response.read1(65536)
                chat.receive_body(data)
                if not data:
                    response.close()  # lets http.client send the next request
            else:
                events.append(event)  # type: ignore[arg-type]
                if isinstance(event, g.ChatDone):
                    return events
    finally:
        connection.close()


def drain(chat: g.Chat) -> None:
    while not isinstance(chat.next_event(), g.Sentinel):
        pass


DRIVERS = [chat_over_socket, chat_over_http_client]


@pytest.mark.parametrize("drive", DRIVERS)
def test_full_chat_over_loopback(
    drive: Callable[..., list[g.ChatEvent]], make_chat: Callable[..., g.Chat]
) -> None:
    service = g.server.Service(entropy=random.Random(7).randbytes)
    with threaded_server(service) as address:
        events = drive(address, make_chat(PROMPT))
    assert events[-1] == g.ChatDone(g.server.expected_reply(PROMPT))
    assert "".join(e.text for e in events if isinstance(e, g.TextDelta)) == events[-1].text


@pytest.mark.parametrize("drive", DRIVERS)
def test_seven_chats_over_loopback(
    drive: Callable[..., list[g.ChatEvent]], make_chat: Callable[..., g.Chat]
) -> None:
    service = g.server.Service(entropy=random.Random(7).randbytes)
    with threaded_server(service) as address:
        for number in range(7):
            events = drive(address, make_chat(f"{PROMPT} {number}"))
            assert events[-1] == g.ChatDone(g.server.expected_reply(f"{PROMPT} {number}"))
    assert service.counts["login"] == 2


@pytest.mark.parametrize("drive", DRIVERS)
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("envelope=quota@text", g.QuotaExhausted),
        ("status=503@stream", g.HTTPStatusError),
        ("cut=3", g.StreamInterrupted),
        ("malformed=2", g.RemoteProtocolError),
    ],
)
def test_faults_over_loopback(
    drive: Callable[..., list[g.ChatEvent]],
    fault: str,
    error: type[Exception],
    make_chat: Callable[..., g.Chat],
) -> None:
    service = g.server.Service(entropy=random.Random(7).randbytes, faults=[fault])
    with threaded_server(service) as address:
        if drive is chat_over_http_client and fault.startswith("cut"):
            # http.client reports the cut itself; the chat is told by abort().
            chat = make_chat(PROMPT)
            with pytest.raises(http.client.IncompleteRead):
                drive(address, chat)
            chat.abort("http.client: incomplete read")
            with pytest.raises(error):
                drain(chat)
            return
        with pytest.raises(error):
            drive(address, make_chat(PROMPT))


def test_connection_close_gives_reconnect_needed(make_chat: Callable[..., g.Chat]) -> None:
    service = g.server.Service(entropy=random.Random(7).randbytes)
    with threaded_server(service) as address:
        conn = g.ClientConnection(
            make_chat(PROMPT), host="x", proxy_headers=[("connection", "close")]
        )
        sock = socket.create_connection(address, timeout=10)
        reconnects = 0
        try:
            while True:
                event = conn.next_event()
                if event is g.NEED_DATA:
                    conn.receive_data(sock.recv(65536))
                elif event is g.SEND_REQUEST:
                    sock.sendall(conn.send(now=time.time()))
                elif isinstance(event, g.ReconnectNeeded):
                    reconnects += 1
                    sock.close()
                    sock = socket.create_connection(address, timeout=10)
                elif isinstance(event, g.ChatDone):
                    break
        finally:
            sock.close()
    assert reconnects == 2  # login -> text -> stream, each on its own connection
