"""One chat at the bytes level: the :class:`Chat` machine over HTTP/1.1 (h11).

Bytes in, events out; the caller owns the socket::

    conn = ClientConnection(Chat(prompt, credentials=creds, fingerprint=fp), host="example")
    sock = socket.create_connection(address)
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            conn.receive_data(sock.recv(65536))        # b"" means EOF
        elif event is SEND_REQUEST:
            sock.sendall(conn.send(now=time.time()))
        elif isinstance(event, ReconnectNeeded):
            sock.close(); sock = socket.create_connection(address)
        elif isinstance(event, TextDelta):
            print(event.text, end="")
        elif isinstance(event, ChatDone):
            break

Login, text and stream go over one connection while the server keeps it
alive; when it will not, :class:`ReconnectNeeded` comes before the next
``SEND_REQUEST``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from ._chat import Chat
from ._errors import InvalidHTTP, LocalProtocolError, excerpt
from ._events import ChatEvent, ReconnectNeeded, Request
from ._http11 import SERVER_CLOSED, ReaderState, ResponseHead, ResponseReader, write_request
from ._state import SEND_STATES, ClientState
from ._util import NEED_DATA, PAUSED, SEND_REQUEST, Sentinel, check_header_name, check_header_value

__all__ = ["DEFAULT_MAX_HEAD_SIZE", "ClientConnection"]

_SENT_STATES = frozenset({ClientState.LOGIN_SENT, ClientState.TEXT_SENT, ClientState.STREAM_SENT})
# Enum members as module constants: before Python 3.12 one read off its class
# goes through EnumType.__getattr__'s slow attribute hook (see _chat).
_ENDED = (ClientState.ERROR, ClientState.DONE)
_READER_IDLE = ReaderState.IDLE
_READER_HEAD = ReaderState.HEAD
_READER_DONE = ReaderState.DONE

#: Cap on a response head (status line and headers), in bytes; h11 buffers at
#: most this much while it waits for the head to end.
DEFAULT_MAX_HEAD_SIZE = 64 * 1024


class ClientConnection:
    """Drives a :class:`Chat` over HTTP/1.1 bytes.

    Args:
        chat: the exchange-level machine this connection drives.
        host: the ``Host`` header (``name`` or ``name:port``).
        target_prefix: prepended to every request target; ``"http://host:port"``
            gives the absolute-form an HTTP proxy wants for plain-HTTP targets.
        proxy_headers: extra headers for an HTTP proxy (``Proxy-Authorization``).
        max_head_size: cap on a response head in bytes.
    """

    def __init__(
        self,
        chat: Chat,
        *,
        host: str,
        target_prefix: str = "",
        proxy_headers: Iterable[tuple[str, str]] = (),
        max_head_size: int = DEFAULT_MAX_HEAD_SIZE,
    ) -> None:
        self.chat = chat
        self.host = check_header_value("host", host)
        self._prefix = check_header_value("target prefix", target_prefix)
        if " " in target_prefix or "\t" in target_prefix or not target_prefix.isascii():
            raise LocalProtocolError("the target prefix must be ASCII without spaces")
        # (Built only when there are any: the common case is none, every chat.)
        self._proxy_headers: tuple[tuple[str, str], ...] = (
            tuple(
                (check_header_name(n).lower(), check_header_value("proxy header", v))
                for n, v in proxy_headers
            )
            if proxy_headers
            else ()
        )
        for _, value in self._proxy_headers:
            _add_proxy_secrets(chat, value)
        # Whether this connection's requests say "Connection: close".  A
        # request's headers are the chat's fixed ones (none of them a
        # Connection header), its extra headers and the proxy headers, so the
        # answer is known now rather than searched for in every request.
        extra = chat._extra_headers  # the core's own Chat: its checked headers
        self._says_close = bool(extra or self._proxy_headers) and _says_close(
            (*extra, *self._proxy_headers)
        )
        self._max_head_size = max_head_size
        # The HTTP/1.1 side of one TCP connection (h11 and the chunked
        # decoder): a new one per connection.
        self._http = ResponseReader(max_head_size=max_head_size)
        # Why the server will not reuse this connection, once it has said so.
        self._reconnect: str | None = None
        #: How many requests went out on the current connection.
        self.requests_on_connection = 0

    @property
    def state(self) -> ClientState:
        """The chat's state."""
        return self.chat.state

    @property
    def reusable(self) -> bool:
        """Whether the connection may carry another request (keep-alive).

        True between exchanges when the server did not ask to close and no
        unread bytes are left over.
        """
        return self._reconnect is None and self._http.reusable

    def send(self, now: float) -> bytes:
        """The bytes of the next request (when :meth:`next_event` said ``SEND_REQUEST``)."""
        if self._reconnect is not None:
            raise LocalProtocolError(
                "the server closed this connection: take ReconnectNeeded first"
            )
        out = self._frame(self.chat.next_request(now))
        self.requests_on_connection += 1
        return out

    def resend_on_new_connection(self) -> bytes:
        """The request just sent, framed again for a fresh connection.

        For drivers whose write failed on a kept-alive connection the server
        had already closed: nothing reached the server, so sending the same
        request on a new connection is safe.  Allowed only while no byte of the
        response has arrived.
        """
        request = self.chat.request
        http = self._http
        if (
            request is None
            or self.chat.state not in _SENT_STATES
            or http.state is not _READER_HEAD
            or http.answered
            or http.closed
        ):
            raise LocalProtocolError("only a request with no answer yet can be sent again")
        self._fresh()
        self.requests_on_connection = 1
        return self._frame(request)

    def _frame(self, request: Request) -> bytes:
        if self._http.state is not _READER_IDLE:
            raise LocalProtocolError(f"cannot send the {request.kind} request now")
        headers: list[tuple[str, str]] = [("host", self.host), *request.headers]
        if self._proxy_headers:
            headers.extend(self._proxy_headers)
        close = self._says_close
        if request.method != "GET" or request.body:
            headers.append(("content-length", str(len(request.body))))
        # The request is written here, byte for byte as h11 writes one (a
        # differential test holds us to that), because h11's writer costs more
        # than the rest of an exchange.  Every header value was checked on the
        # way in (check_header_value: no control characters, latin-1 only);
        # names are tokens.  The reader learns what a response's framing
        # depends on (the method, and whether the connection closes after);
        # its h11 parser is built later (request_sent, or the first bytes of
        # the response), so the bytes go on the wire first.
        self._http.expect(request.method, close=close)
        return write_request(request.method, self._prefix + request.target, headers, request.body)

    def request_sent(self) -> bool:
        """Optional: the bytes of :meth:`send` are on the wire.

        The machine's HTTP bookkeeping for the request then happens now, while
        the server works on it, instead of when the response's first bytes
        arrive (where it would delay reading them); and the chat builds what
        it will read the response with (:meth:`Chat.request_sent`).

        Returns True when nothing of the response is in hand yet, so that
        :meth:`next_event` would say ``NEED_DATA``: a driver may then read at
        once, without asking (one trip through the machine less per request).
        False when bytes or the server's EOF came already: ask next_event.
        """
        http = self._http
        http.request_sent()
        chat = self.chat
        chat.request_sent()
        return http.waiting and chat.waiting

    def receive_data(self, data: bytes) -> None:
        """Bytes from the server; ``b""`` means it closed the connection."""
        self._http.receive_data(data)

    def new_connection(self) -> None:
        """The driver moved to a fresh connection between exchanges.

        For drivers that notice a dead kept-alive connection before sending on
        it.  Only allowed while the chat waits to send its next request.
        """
        if self.chat.state not in SEND_STATES:
            raise LocalProtocolError("a new connection can only start between exchanges")
        self._fresh()

    def _fresh(self) -> None:
        # Everything that belongs to one TCP connection starts over.
        self._http = ResponseReader(max_head_size=self._max_head_size)
        self._reconnect = None
        self.requests_on_connection = 0

    def next_events(self) -> list[ChatEvent] | ReconnectNeeded | Sentinel:
        """Every event ready now in one list, or else what :meth:`next_event`
        returns that is not a chat event: a sentinel or ``ReconnectNeeded``.

        The same events as :meth:`next_event` gives one at a time, in the same
        order and with errors raised at the same point (after every event
        before them); a ``ChatDone`` is always the last of its list.  For
        drivers that pass events on in batches: one call per read, not one
        per event.
        """
        return self._next(True)  # type: ignore[return-value]  # (a list, when batched)

    def next_event(self) -> ChatEvent | Sentinel:
        """The next event, or ``NEED_DATA`` / ``SEND_REQUEST`` / ``PAUSED``."""
        return self._next(False)  # type: ignore[return-value]  # (never a list, one by one)

    def _next(self, batch: bool) -> list[ChatEvent] | ChatEvent | Sentinel:
        # next_event's loop, and next_events' with ``batch``: the events that
        # body bytes made are then taken all at once, where one read's bytes
        # went in (not the first popped, then the rest taken and put behind it).
        chat = self.chat
        http = self._http
        while True:
            event = chat.next_event()
            if event is not NEED_DATA:
                if event is SEND_REQUEST:
                    if self._reconnect is not None:
                        reason = self._reconnect
                        self._fresh()
                        return ReconnectNeeded(reason)
                    return event
                if not batch or event is PAUSED:
                    return event
                rest = chat.take_events()  # (the events behind it)
                if rest:
                    rest.insert(0, event)
                    return rest
                return [event]
            try:
                got = http.next_event()
            except InvalidHTTP as exc:
                message = str(exc)
                if message != SERVER_CLOSED:
                    message = f"the server's HTTP was invalid ({excerpt(message)})"
                if chat.state not in _ENDED:
                    chat.abort(message)
                continue
            if type(got) is bytes:
                if got:
                    chat.receive_body(got)
                    if batch:
                        ready = chat.take_events()
                        if ready:
                            return ready
                    continue
                # The body ended.
                if chat.state not in _ENDED:
                    chat.receive_body(b"")
                if http.state is _READER_DONE:
                    self._reconnect = "the server closed the connection after its response"
            elif got is NEED_DATA:
                return NEED_DATA
            else:
                assert isinstance(got, ResponseHead)
                chat.receive_response(got.status, got.headers)


def _says_close(headers: Iterable[tuple[str, str]]) -> bool:
    # A Connection header whose value says close (any case, anywhere in it).
    for name, value in headers:
        if len(name) == 10 and name.lower() == "connection" and "close" in value.lower():
            return True
    return False


def _add_proxy_secrets(chat: Chat, value: str) -> None:
    # A Proxy-Authorization value, its credentials (after the scheme), and for
    # Basic (RFC 7617) the decoded "user:pass" and its two halves: a proxy or
    # server that echoes any of them must not get it into an error message.
    chat.add_secret("proxy-credentials", value)
    scheme, _, credentials = value.strip().partition(" ")
    credentials = credentials.strip()
    chat.add_secret("proxy-credentials", credentials)
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return
        user, _, password = decoded.partition(":")
        for part in (decoded, password, user):
            chat.add_secret("proxy-credentials", part)
