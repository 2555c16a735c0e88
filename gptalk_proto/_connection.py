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

import h11

from ._chat import Chat
from ._errors import LocalProtocolError, RemoteProtocolError, excerpt
from ._events import ChatEvent, ReconnectNeeded, Request
from ._http11 import ChunkedDecoder
from ._state import SEND_STATES, ClientState
from ._util import NEED_DATA, SEND_REQUEST, Sentinel, check_header_name, check_header_value

__all__ = ["DEFAULT_MAX_HEAD_SIZE", "ClientConnection"]

_SENT_STATES = frozenset({ClientState.LOGIN_SENT, ClientState.TEXT_SENT, ClientState.STREAM_SENT})

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
        if any(c in target_prefix for c in " \t") or not target_prefix.isascii():
            raise LocalProtocolError("the target prefix must be ASCII without spaces")
        self._proxy_headers = tuple(
            (check_header_name(n).lower(), check_header_value("proxy header", v))
            for n, v in proxy_headers
        )
        for _, value in self._proxy_headers:
            _add_proxy_secrets(chat, value)
        self._max_head_size = max_head_size
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_head_size)
        # Why the server will not reuse this connection, once it has said so.
        self._reconnect: str | None = None
        self._closed = False
        # A chunked stream body is decoded here, not by h11 (see _chunked):
        # the decoder, the reads not decoded yet, and whether the connection
        # stays open after the body (h11's rule, decided from the heads).
        self._body: ChunkedDecoder | None = None
        self._unread: list[bytes] = []
        self._keep_alive = True
        self._request_close = False
        # A request written but not yet shown to h11: (method, connection-close).
        self._unsent: tuple[bytes, bool] | None = None
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
        return (
            self._reconnect is None
            and not self._closed
            and self._unsent is None
            and self._h11.our_state is h11.IDLE
            and self._h11.their_state is h11.IDLE
            and not self._h11.trailing_data[0]
        )

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
        self._sent_to_h11()
        conn = self._h11
        if (
            request is None
            or self.chat.state not in _SENT_STATES
            or conn.their_state is not h11.SEND_RESPONSE
            or conn.trailing_data != (b"", False)
        ):
            raise LocalProtocolError("only a request with no answer yet can be sent again")
        self._fresh()
        self.requests_on_connection = 1
        return self._frame(request)

    def _frame(self, request: Request) -> bytes:
        headers: list[tuple[str, str]] = [("host", self.host), *request.headers]
        headers.extend(self._proxy_headers)
        close = any(
            name.lower() == "connection" and "close" in value.lower() for name, value in headers
        )
        self._request_close = close
        if request.method != "GET" or request.body:
            headers.append(("content-length", str(len(request.body))))
        # h11 reads the response, so it must see a request go out -- but only
        # what a response's framing depends on: the method, and whether the
        # connection closes after.  The request itself is written here, byte
        # for byte as h11 writes one (a differential test holds us to that),
        # because h11's writer costs more than the rest of an exchange.  Every
        # header value was checked on the way in (check_header_value: no
        # control characters, latin-1 only); names are tokens.  h11 is told
        # later, when the first byte of the response arrives (_sent_to_h11):
        # the bytes go on the wire first, and h11's bookkeeping overlaps the
        # server's work instead of delaying the request.
        if self._h11.our_state is not h11.IDLE:
            raise LocalProtocolError(f"cannot send the {request.kind} request now")
        self._unsent = (request.method.encode("ascii"), close)
        lines = [f"{request.method} {self._prefix}{request.target} HTTP/1.1\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers)
        lines.append("\r\n")
        return "".join(lines).encode("latin-1") + request.body

    def request_sent(self) -> None:
        """Optional: the bytes of :meth:`send` are on the wire.

        The machine's HTTP bookkeeping for the request then happens now, while
        the server works on it, instead of when the response's first bytes
        arrive (where it would delay reading them).
        """
        self._sent_to_h11()

    def _sent_to_h11(self) -> None:
        # The deferred half of _frame: h11 learns the request went out.
        unsent = self._unsent
        if unsent is None:
            return
        self._unsent = None
        method, close = unsent
        state = [(b"host", b"x"), (b"connection", b"close")] if close else [(b"host", b"x")]
        self._h11.send(h11.Request(method=method, target=b"/", headers=state, _parsed=True))
        self._h11.send(h11.EndOfMessage())

    def receive_data(self, data: bytes) -> None:
        """Bytes from the server; ``b""`` means it closed the connection."""
        if self._closed:
            if data:
                raise LocalProtocolError("receive_data() after EOF")
            return
        if not data:
            self._closed = True
        if self._body is not None:
            if data:
                self._unread.append(data)
            return
        if self._unsent is not None:
            self._sent_to_h11()
        self._h11.receive_data(data)

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
        self._unsent = None
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=self._max_head_size)
        self._reconnect = None
        self._closed = False
        self._body = None
        self._unread = []
        self.requests_on_connection = 0

    def next_event(self) -> ChatEvent | Sentinel:
        """The next event, or ``NEED_DATA`` / ``SEND_REQUEST`` / ``PAUSED``."""
        chat = self.chat
        while True:
            event = chat.next_event()
            if event is not NEED_DATA:
                if event is SEND_REQUEST and self._reconnect is not None:
                    reason = self._reconnect
                    self._fresh()
                    return ReconnectNeeded(reason)
                return event
            if self._body is not None:
                if self._read_body():
                    continue
                return NEED_DATA
            if self._unsent is not None:
                self._sent_to_h11()
            try:
                h = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                if self._closed:
                    chat.abort("the server closed the connection")
                else:
                    chat.abort(f"the server's HTTP was invalid ({excerpt(str(exc))})")
                continue
            if h is h11.NEED_DATA:
                return NEED_DATA
            h_type = type(h)
            if h_type is h11.Data:
                chat.receive_body(h.data)  # type: ignore[union-attr]
            elif h_type is h11.Response:
                chat.receive_response(h.status_code, h.headers)  # type: ignore[union-attr]
                if _is_chunked(h):  # type: ignore[arg-type]
                    self._start_body(h)  # type: ignore[arg-type]
            elif h_type is h11.EndOfMessage:
                chat.receive_body(b"")
                self._cycle()
            elif h_type is h11.ConnectionClosed:
                chat.abort("the server closed the connection")
            elif h is h11.PAUSED:  # pragma: no cover - we never pipeline
                raise RemoteProtocolError("HTTP connection paused unexpectedly")
            # InformationalResponse (1xx): not final, nothing to do.

    def _start_body(self, response: h11.Response) -> None:
        # From here the body is ours: h11 has read the head; what it buffered
        # past it is the body's first bytes.
        self._body = ChunkedDecoder(max_line=self._max_head_size)
        leftover, _ = self._h11.trailing_data
        self._unread = [leftover] if leftover else []
        # h11's rule: the connection is kept unless either side said
        # "Connection: close" or the response is HTTP/1.0.
        tokens = b",".join(v for n, v in response.headers if n == b"connection").lower()
        self._keep_alive = (
            response.http_version >= b"1.1" and b"close" not in tokens and not self._request_close
        )

    def _read_body(self) -> bool:
        """Decode what arrived of the body; False when more must be read."""
        decoder = self._body
        assert decoder is not None
        chat = self.chat
        if not self._unread:
            if not self._closed:
                return False
            self._body = None
            try:
                decoder.eof()
            except RemoteProtocolError:
                chat.abort("the server closed the connection")
            return True
        data = self._unread[0] if len(self._unread) == 1 else b"".join(self._unread)
        self._unread.clear()
        try:
            body = decoder.feed(data)
        except RemoteProtocolError as exc:
            partial: bytes = getattr(exc, "partial", b"")
            if partial:
                chat.receive_body(partial)
            self._body = None
            if chat.state not in (ClientState.ERROR, ClientState.DONE):
                chat.abort(f"the server's HTTP was invalid ({excerpt(str(exc))})")
            return True
        if body:
            chat.receive_body(body)
        if decoder.done:
            self._body = None
            if chat.state not in (ClientState.ERROR, ClientState.DONE):
                chat.receive_body(b"")
            if self._keep_alive and not self._closed:
                self._h11 = h11.Connection(
                    h11.CLIENT, max_incomplete_event_size=self._max_head_size
                )
                if decoder.leftover:
                    self._h11.receive_data(bytes(decoder.leftover))
            else:
                self._reconnect = "the server closed the connection after its response"
        return True

    def _cycle(self) -> None:
        # A response ended (h11 framed it): reuse the connection if both sides allow.
        conn = self._h11
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        else:
            self._reconnect = "the server closed the connection after its response"


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


def _is_chunked(response: h11.Response) -> bool:
    return any(
        name == b"transfer-encoding" and value.lower().endswith(b"chunked")
        for name, value in response.headers
    )
