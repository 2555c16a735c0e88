"""One chat, at the HTTP-exchange level.

For people who bring their own HTTP client: the machine hands out request
descriptions (:meth:`Chat.next_request`) and takes what came back
(:meth:`Chat.receive_response`, :meth:`Chat.receive_body`), and
:meth:`Chat.next_event` says what happened or what to do next::

    chat = Chat(messages, credentials=creds, fingerprint=fp)
    while True:
        event = chat.next_event()
        if event is SEND_REQUEST:
            request = chat.next_request(now=time.time())
            response = http.request(request)           # your client
            chat.receive_response(response.status, response.headers)
        elif event is NEED_DATA:
            chat.receive_body(response.read(65536))    # b"" at the end
        elif isinstance(event, TextDelta):
            print(event.text, end="")
        elif isinstance(event, ChatDone):
            break

Errors from the peer or the service are raised by :meth:`next_event`, after
every event that came before them: nothing parsed is lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ._content import ContentDecoder
from ._credentials import Credentials, Ticket
from ._errors import (
    AuthExpired,
    AuthInvalid,
    GPTalkError,
    LocalProtocolError,
    QuotaExhausted,
    RemoteProtocolError,
    SSESizeError,
    StreamInterrupted,
    excerpt,
)
from ._events import ChatDone, ChatEvent, LoggedIn, Request
from ._scrub import scrub_error
from ._state import SEND_STATES, ClientInput, ClientState, StateMachine
from ._util import (
    MAX_RETRY_AFTER_LENGTH,
    NEED_DATA,
    PAUSED,
    RETRY_AFTER_STATUSES,
    SEND_REQUEST,
    Sentinel,
    check_header_name,
    check_header_value,
    check_text_value,
    header_text,
)
from ._wire import (
    DEFAULT_MODEL,
    DEFAULT_ORIGIN,
    DEFAULT_USER_AGENT,
    DONE_MARKER,
    check_fingerprint,
    check_login_data,
    check_stream_data,
    format_prompt,
    load_json_object,
    login_request,
    raise_for_envelope,
    status_error,
    stream_request,
    text_request,
)
from .sse._growing import whole_data
from .sse._media import EVENT_STREAM, media_type
from .sse._parser import DEFAULT_MAX_EVENT_SIZE, DEFAULT_MAX_LINE_SIZE, SSEParser

__all__ = ["DEFAULT_MAX_BODY_SIZE", "Chat"]

#: Cap on a login or text response body (and on an error body), in bytes.
#: These are small JSON envelopes; anything near this size is not GPTalk.
DEFAULT_MAX_BODY_SIZE = 1024 * 1024

_SEND = ClientInput.SEND
_RESPONSE = ClientInput.RESPONSE
_DATA = ClientInput.DATA
_END = ClientInput.END
_ABORT = ClientInput.ABORT
# The states as module constants, as the inputs above: before Python 3.12 an Enum
# member read off its class (``ClientState.START``) goes through EnumType.__getattr__'s
# slow attribute hook, about ten times a global's cost; a chat reads states ninety times.
_START = ClientState.START
_LOGIN_SENT = ClientState.LOGIN_SENT
_LOGIN_BODY = ClientState.LOGIN_BODY
_LOGGED_IN = ClientState.LOGGED_IN
_TEXT_SENT = ClientState.TEXT_SENT
_TEXT_DONE = ClientState.TEXT_DONE
_STREAM_SENT = ClientState.STREAM_SENT
#: The states that wait for a response's head (see Chat.waiting).
_WAITING_STATES = frozenset({_LOGIN_SENT, _TEXT_SENT, _STREAM_SENT})
_SENT = {"login": _LOGIN_SENT, "text": _TEXT_SENT, "stream": _STREAM_SENT}  # by request kind
_STREAMING = ClientState.STREAMING
_DRAINING = ClientState.DRAINING
_DONE = ClientState.DONE
_ERROR = ClientState.ERROR

# Errors after which the login token is worth no more: the next chat logs in.
_TOKEN_ERRORS = (QuotaExhausted, AuthExpired, AuthInvalid)


class Chat:
    """One GPTalk chat as a sans-IO state machine (exchange level).

    Args:
        messages: a prompt string, or g4f-style ``[{"role", "content"}]``.
        credentials: the login token shared with other chats.
        fingerprint: 32 hex characters sent if this chat must log in.  Entropy
            comes from the caller (``secrets.token_hex(16)``).
        model, user_agent, origin: sent as the web client sent them.
        extra_headers: more headers for every request.
        base_url: used only to name URLs in error messages.
        max_body_size: cap on a login/text/error body in bytes.
        max_line_size, max_event_size: the SSE parser's caps.

    Every user-supplied value that goes into a header is checked for CR and LF
    here, before anything can be sent.
    """

    def __init__(
        self,
        messages: str | Sequence[Mapping[str, str]],
        *,
        credentials: Credentials,
        fingerprint: str,
        model: str = DEFAULT_MODEL,
        user_agent: str = DEFAULT_USER_AGENT,
        origin: str = DEFAULT_ORIGIN,
        extra_headers: Iterable[tuple[str, str]] = (),
        base_url: str = "",
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_line_size: int = DEFAULT_MAX_LINE_SIZE,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> None:
        if not isinstance(credentials, Credentials):
            raise LocalProtocolError("credentials must be a Credentials object")
        self.credentials = credentials
        self._fingerprint = check_fingerprint(fingerprint)
        self.model = check_text_value("model", model)
        self.user_agent = check_header_value("user_agent", user_agent)
        self.origin = check_header_value("origin", origin)
        headers = []
        for name, value in extra_headers:
            check_header_name(name)
            headers.append((name.lower(), check_header_value(f"header {name!r}", value)))
        self._extra_headers = tuple(headers)
        self.prompt = format_prompt(messages)
        self.base_url = base_url.rstrip("/")
        self.max_body_size = max_body_size
        self._sse_caps = (max_line_size, max_event_size)

        self._machine = StateMachine()
        # Events not handed over yet: _events[_taken:], one read's at most.  A list, emptied
        # once all are taken: an empty deque held a 528-byte block (per idle chat).
        self._events: list[ChatEvent] = []
        self._taken = 0
        self._error: GPTalkError | None = None
        self._request: Request | None = None
        self._status = 0
        self._content_type = ""
        self._retry_after: str | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._token: str | None = None
        # This chat's place among the chats sharing the credentials, and a token its login
        # got that the credentials do not hold yet (stored with the text request: claim()).
        self._ticket = Ticket()
        self._fresh_login: tuple[str, float] | None = None
        self._stream_token: str | None = None
        self._parser: SSEParser | None = None
        # The stream's parser, built once its request is sent: its first bytes wait for none.
        self._ready_parser: SSEParser | None = None
        self._decoder = ContentDecoder()
        self._more_secrets: list[tuple[str, str]] = []

    # -- introspection ----------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The machine's current :class:`ClientState`."""
        return self._machine.state

    @property
    def text(self) -> str:
        """The reply received so far (the whole reply once :class:`ChatDone` came)."""
        return self._decoder.text

    @property
    def request(self) -> Request | None:
        """The request in flight (or last made)."""
        return self._request

    @property
    def secrets(self) -> list[tuple[str, str]]:
        """``(kind, value)`` of every secret this chat knows: the fingerprint,
        its login and stream tokens, the shared credentials' current token, and
        what :meth:`add_secret` added.  Errors raised by :meth:`next_event` never
        carry them (each becomes ``<kind>``)."""
        known = [("fingerprint", self._fingerprint), *self._more_secrets]
        for kind, value in (
            ("login-token", self._token),
            ("login-token", self.credentials.token),
            ("stream-token", self._stream_token),
        ):
            if value:
                known.append((kind, value))
        return known

    def add_secret(self, kind: str, value: str) -> None:
        """One more value to keep out of error messages (a proxy's credentials:
        :class:`ClientConnection` adds them)."""
        if value:
            self._more_secrets.append((kind, value))

    def needs_login(self, now: float) -> bool:
        """Whether the next request will be a login (only meaningful in ``START``)."""
        if self._machine.state is not _START or self._ticket.token is not None:
            return False
        ticket = self._ticket
        return ticket.own or (ticket.login is None and not self.credentials.usable(now))

    @property
    def logging_in(self) -> bool:
        """Whether this chat claimed a login of its own that has not ended
        (other chats may be waiting on the handle it gave :meth:`claim`)."""
        return self._ticket.own

    def claim(self, now: float, handle: object = None) -> object:
        """Before the first request, claim this chat's token among the chats
        sharing the credentials (:meth:`Credentials.claim`).

        Returns ``None`` when the first request may go: it will use a token,
        or be a login that the chats seated on it wait for (on ``handle``)
        until this chat makes its text request or :meth:`release_claim`.
        Returns :data:`NEED_HANDLE` when the chat must log in and gave no
        handle; else the handle of another chat's login to wait on before
        claiming again.  Drivers that run many chats at once call it (under
        their lock, if threads share the credentials); without it, the chat
        decides alone when it makes its first request.
        """
        if self._machine.state is not _START:
            raise LocalProtocolError("claim() comes before the chat's first request")
        return self.credentials.claim(self._ticket, now, handle)

    def release_claim(self) -> None:
        """The chat ends (well or not): give back what it claimed and did not
        use.  Idempotent; drivers call it when they stop driving the chat.

        A token its login got but no text request used yet goes to the
        credentials; a login of its own that did not end ends (the chats
        waiting on it claim again); a seat it waited on is given back.
        """
        if self._fresh_login is not None:
            token, expires_at = self._fresh_login
            self._fresh_login = None
            self.credentials.logged_in(self._ticket, token, expires_at, use=False)
        self.credentials.release(self._ticket)

    # -- the caller's inputs ----------------------------------------------------

    def next_request(self, now: float) -> Request:
        """The next request to make (call when :meth:`next_event` says ``SEND_REQUEST``).

        ``now`` is the current unix time in seconds: it decides whether the
        credentials are still usable and stamps the request.
        """
        self._machine.check(_SEND)
        state = self._machine.state
        if state is _START and self.needs_login(now):
            request = login_request(
                self._fingerprint,
                now=now,
                user_agent=self.user_agent,
                origin=self.origin,
                extra_headers=self._extra_headers,
            )
        elif state is _TEXT_DONE:
            assert self._stream_token is not None
            request = stream_request(
                self._stream_token,
                now=now,
                user_agent=self.user_agent,
                origin=self.origin,
                extra_headers=self._extra_headers,
            )
        else:
            if state is _START:
                self._token = self._first_token(now)
            elif self._fresh_login is not None:
                # The login's token goes to the credentials now, its first use to this chat, the
                # uses of the chats seated on the login to them: the one step where counts change.
                token, expires_at = self._fresh_login
                self._fresh_login = None
                self._token = self.credentials.logged_in(self._ticket, token, expires_at)
            assert self._token is not None
            request = text_request(
                self._token,
                self.prompt,
                model=self.model,
                now=now,
                user_agent=self.user_agent,
                origin=self.origin,
                extra_headers=self._extra_headers,
            )
        self._machine.move(_SEND, _SENT[request.kind])
        self._request = request
        return request

    def request_sent(self) -> None:
        """Optional: the request from :meth:`next_request` is on the wire.

        After the stream request, the event-stream parser its answer needs is
        built now, while the server works, instead of when the answer's head
        arrives (where it would delay the first delta).
        """
        if self._machine.state is _STREAM_SENT and self._ready_parser is None:
            self._ready_parser = self._new_parser()

    @property
    def waiting(self) -> bool:
        """Whether next_event says NEED_DATA for a response not begun (nothing held)."""
        return not self._events and self._error is None and self._machine.state in _WAITING_STATES

    def _new_parser(self) -> SSEParser:
        max_line, max_event = self._sse_caps
        return SSEParser(
            max_line_size=max_line,
            max_event_size=max_event,
            growing_tail=ContentDecoder.growing_tail,
        )

    def _first_token(self, now: float) -> str:
        ticket = self._ticket
        if ticket.token is not None:
            return ticket.token
        if ticket.login is not None:
            raise LocalProtocolError(
                "this chat holds a seat on another chat's login: claim() again once it ends"
            )
        return self.credentials.acquire(now)

    def receive_response(
        self, status: int, headers: Iterable[tuple[str | bytes, str | bytes]] = ()
    ) -> None:
        """The final response head of the request in flight."""
        targets = self._machine.check(_RESPONSE)
        if isinstance(status, bool) or not isinstance(status, int) or 100 <= status <= 199:
            # Not a status, or 1xx (not final; an HTTP parser skips them): the caller's mistake.
            self._machine.fail()
            raise LocalProtocolError(f"expected a final response status (200-599), got {status!r}")
        if not 200 <= status <= 599:
            # Three digits that HTTP gives no meaning (RFC 9110 section 15:
            # 100-599), such as 600: h11 lets them through, and they are the
            # server's fault.  Raised by next_event, like every peer error.
            shown = str(status) if -1000 < status < 1000 else "a number of more digits"
            self._fail(RemoteProtocolError(f"expected an HTTP status from 100 to 599, got {shown}"))
            return
        content_type = ""
        retry_after = None
        for name, value in headers:
            # h11 hands over lowercase bytes names; other clients, any case.
            if name == b"content-type" or (
                len(name) == 12 and header_text(name).lower() == "content-type"
            ):
                content_type = media_type(value)  # == EVENT_STREAM below
            elif status in RETRY_AFTER_STATUSES and (
                name == b"retry-after"
                or (len(name) == 11 and header_text(name).lower() == "retry-after")
            ):
                # Text for the IO layer (it knows the time); too long: no Retry-After at all.
                text = header_text(value).strip()
                retry_after = text if len(text) <= MAX_RETRY_AFTER_LENGTH else None
        self._status = status
        self._content_type = content_type
        self._retry_after = retry_after
        self._body = []
        self._body_size = 0
        (target,) = targets
        ready, self._ready_parser = self._ready_parser, None
        if target is _STREAMING and 200 <= status < 300 and content_type == EVENT_STREAM:
            self._parser = ready if ready is not None else self._new_parser()
            # The parser proves, from the bytes, which values extend the one
            # before; the decoder then need not compare their text again, and
            # (its events are this chat's alone) such a value is handed over
            # as what it added, its whole text not joined.
            grower = self._parser._grower  # the parser is the core's too
            if grower is not None:
                self._decoder.follow_extensions(grower)
        self._machine.move(_RESPONSE, target)

    def receive_body(self, data: bytes) -> None:
        """Body bytes of the response in flight; ``b""`` says the body ended."""
        state = self._machine.state
        if not data:
            self._machine.check(_END)
            if state is _STREAMING and self._parser is not None:
                self._fail(
                    StreamInterrupted(
                        "the reply stream ended before its [DONE] marker", text=self.text
                    )
                )
            elif state is _DRAINING:
                self._machine.move(_END, _DONE)
            else:
                self._finish_body(state)
            return
        self._machine.check(_DATA)
        if state is _DRAINING:
            return  # after [DONE]; only the body's end matters now
        if state is _STREAMING and self._parser is not None:
            self._stream(data)
            return
        self._body_size += len(data)
        if self._body_size > self.max_body_size:
            self._fail(
                RemoteProtocolError(
                    f"expected a response body of at most {self.max_body_size} bytes, "
                    f"got {self._body_size} or more"
                )
            )
            return
        self._body.append(bytes(data))

    def abort(self, reason: str = "the connection was lost") -> None:
        """The connection broke while a response was due (EOF, reset, bad HTTP).

        Ends the chat with the error that fits where it stood: a
        :class:`RemoteProtocolError` naming the request, or
        :class:`StreamInterrupted` with the text so far.  After ``[DONE]`` the
        chat is complete anyway and moves to ``DONE``.
        """
        self._machine.check(_ABORT)
        state = self._machine.state
        if state is _DRAINING:
            self._machine.move(_ABORT, _DONE)
            return
        assert self._request is not None
        kind = self._request.kind
        if state is _STREAMING and self._parser is not None:
            error: GPTalkError = StreamInterrupted(
                f"the reply stream broke before its [DONE] marker: {reason}", text=self.text
            )
        elif state in (_LOGIN_SENT, _TEXT_SENT, _STREAM_SENT):
            error = RemoteProtocolError(
                f"expected a response to the {kind} request, but {reason} before one came"
            )
        else:
            error = RemoteProtocolError(f"the {kind} response body was cut short: {reason}")
        self._fail(error)

    def next_event(self) -> ChatEvent | Sentinel:
        """The next event, or ``SEND_REQUEST`` / ``NEED_DATA`` / ``PAUSED``.

        Raises the peer's or the service's error once every event before it has
        been returned.
        """
        if events := self._events:
            event = events[self._taken]
            self._taken += 1
            if self._taken == len(events):
                events.clear()
                self._taken = 0
            return event
        if self._error is not None:
            error, self._error = self._error, None
            # The one boundary every peer and service error crosses: the
            # secrets this chat knows never leave in a message.
            scrub_error(error, self.secrets)
            raise error
        state = self._machine.state
        if state in SEND_STATES:
            return SEND_REQUEST
        if state is _DONE:
            return PAUSED
        if state is _ERROR:
            raise LocalProtocolError("the chat is in its ERROR state; start a new one")
        return NEED_DATA

    def take_events(self) -> list[ChatEvent]:
        """Every event ready now, in order, taken at once (empty when none).

        What :meth:`next_event` would return one by one before its next
        sentinel or error: a driver that hands events on in batches makes one
        call per read instead of one per event.  A ``ChatDone`` is always the
        last of them (nothing follows the ``[DONE]`` marker).
        """
        events = self._events
        if self._taken:  # (some were taken one by one: the rest, copied)
            events = events[self._taken :]
            self._events.clear()
            self._taken = 0
        else:  # (all of them: the list itself)
            self._events = []
        return events

    # -- internals ----------------------------------------------------------------

    def _fail(self, error: GPTalkError) -> None:
        self._machine.fail()
        self._parser = None
        if isinstance(error, _TOKEN_ERRORS) and self._token is not None:
            self.credentials.invalidate(self._token)
        self._error = error

    def _url(self) -> str:
        assert self._request is not None
        # The path only: the stream request's query carries the stream token.
        return self.base_url + self._request.target.split("?", 1)[0]

    def _finish_body(self, state: ClientState) -> None:
        body = b"".join(self._body)
        self._body = []
        assert self._request is not None
        what = f"{self._request.kind} response"
        try:
            if not 200 <= self._status < 300:
                raise status_error(self._status, self._url(), body, self._retry_after)
            if state is _STREAMING:
                # The stream request answered with something other than an event stream:
                # an error envelope says why; anything else is a protocol violation.
                try:
                    envelope: dict[str, object] | None = load_json_object(body, what)
                except RemoteProtocolError:
                    envelope = None
                if envelope is not None:
                    raise_for_envelope(envelope, what)
                raise RemoteProtocolError(
                    "expected a text/event-stream response to the stream request, got "
                    + (excerpt(self._content_type) if self._content_type else "no content type")
                )
            data = raise_for_envelope(load_json_object(body, what), what)
            if state is _LOGIN_BODY:
                token, expires_at = check_login_data(data, what)
                # Kept until the text request (next_request stores it, taking one use): the
                # token this chat paid a login for is not used up by others before its own
                # text request, and shared counts change only where drivers serialise calls.
                self._fresh_login = (token, expires_at)
                self._token = token
                self._events.append(LoggedIn(expires_at))
                self._machine.move(_END, _LOGGED_IN)
            else:
                self._stream_token = check_stream_data(data, what)
                self._machine.move(_END, _TEXT_DONE)
        except GPTalkError as error:
            self._fail(error)

    def _stream(self, data: bytes) -> None:
        parser = self._parser
        assert parser is not None
        error: GPTalkError | None = None
        # A read's last run of plain messages (nearly every event) comes as its
        # data alone: no event is built for them, to be taken apart here.
        try:
            events, values = parser.feed_values(data)
        except SSESizeError as exc:
            events, values, error = exc.events, [], exc
            # The error reaches the caller after the events before it, each with its whole data.
            exc.events[:] = [whole_data(event) for event in events]
        except RemoteProtocolError as exc:
            events, values, error = [], [], exc
        queue = self._events
        # The reply's data up to [DONE] (typed events are not reply content: their Extensions
        # released), decoded in one call.  (Fields by index: cheaper than by name, per event.)
        datas = values
        if events:
            datas = [event[1] for event in events if event[0] == "message"]
            if len(datas) < len(events):
                self._decoder.release(events)
            datas += values
        done = DONE_MARKER in datas
        if done:
            del datas[datas.index(DONE_MARKER) :]
        try:
            self._decoder.decode_into(datas, queue)
        except RemoteProtocolError as exc:
            # The changes before the invalid event are queued ahead of it.
            self._fail(exc)
            return
        if done:
            queue.append(ChatDone(self.text))
            self._parser = None
            self._machine.move(_DATA, _DRAINING)
            return
        if error is not None:
            self._fail(error)
