"""The recording proxy, sans IO: any client's chats, teed and recorded.

A client that is not ours (curl, a browser, another language's client)
talks to the proxy as if it were the service; the proxy forwards each of its
requests to the upstream service and each upstream read back to the client,
recording both through the same :class:`Recorder` as our own recording
transports.  The driver moves the bytes and says when they moved.

* **Tee, never buffer.**  :meth:`ProxyConnection.upstream_data` returns the
  read it was given, whole, for the driver to write to the client before it
  reads upstream again: the client sees each event when the upstream sent it.
  Requests, small JSON, are read whole (capped) and forwarded whole.
* **Origin-form.**  A client that uses the proxy as its HTTP proxy
  (``HTTP_PROXY=http://H:P``) sends absolute-form targets (RFC 9112 section
  3.2.2); the proxy forwards, and the cassette keeps, the origin-form the
  service sees.  ``Host`` becomes the upstream's.
* **No tunnels.**  ``CONNECT`` (HTTPS through a proxy, RFC 9110 section
  9.3.6) would hide the bytes to record: it gets a 501 saying to point the
  client at the proxy's URL instead.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import h11

from .._errors import InvalidHTTP, LocalProtocolError, escaped
from .._http11 import next_h11_event
from .._util import remember
from ._format import Cassette
from ._profiles import GPTALK, Profile
from ._recorder import ChunkStore, Recorder, origin_form
from ._request_reader import MAX_KNOWN_BLOCKS, KnownFields, RequestHead, RequestReader

__all__ = [
    "MAX_NOTED_REFUSALS",
    "MAX_PROXIED_REQUEST",
    "ProxyConnection",
    "ProxyRecorder",
    "ToClient",
    "ToUpstream",
]

#: Cap on one request the proxy reads before forwarding it, head and body
#: apart, in bytes: GPTalk requests are small JSON, and a request is held
#: until it is whole (the recorder holds it too).
MAX_PROXIED_REQUEST = 2 * 1024 * 1024

#: Requests a client may send ahead of their responses (HTTP/1.1
#: pipelining) on one connection: their methods wait here for the response
#: counter.  GPTalk clients send one at a time.
MAX_PIPELINED = 16

# Hop-by-hop and framing headers the proxy sets itself (RFC 9110 section
# 7.6.1; the body is forwarded whole, with its length).
_DROPPED = frozenset(
    {b"host", b"content-length", b"transfer-encoding", b"proxy-connection", b"proxy-authorization"}
)


@dataclass(frozen=True)
class ToUpstream:
    """Write ``data`` to the upstream connection (open it first if needed)."""

    data: bytes


@dataclass(frozen=True)
class ToClient:
    """Write ``data`` to the client; ``close`` afterwards if set.

    ``note``: for a refusal (the proxy's own answer, not the upstream's), a
    line for whoever runs the proxy, who sees nothing else of it (curl, for
    one, prints only the status of a refused ``CONNECT``, not the body that
    explains it); empty otherwise, and past MAX_NOTED_REFUSALS (see there).
    """

    data: bytes
    close: bool = False
    note: str = ""


ProxyAction = ToUpstream | ToClient

# A NamedTuple's own constructor is a Python function (a frame per call):
# the one made per held request is built by tuple's, from its fields in order.
_new = tuple.__new__

# Methods whose request always carries a Content-Length, even for no body.
_WITH_BODY = frozenset({b"POST", b"PUT", b"PATCH"})


#: Refusals a proxy gives a ``note`` (see :class:`ToClient`); the one after
#: them says that later ones have none, and those have none.  A client that
#: sends bad request after bad request must not fill its runner's terminal
#: or log: the notes are for a runner to see what went wrong, which the
#: first ones show.
MAX_NOTED_REFUSALS = 20


def _refusal(status: int, reason: bytes, text: str) -> bytes:
    body = json.dumps({"code": status, "msg": text}).encode()
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status, reason, len(body), body)
    )


class ProxyRecorder:
    """Records every chat any client makes through the proxy.

    Args:
        upstream: the service URL (kept in the cassette).
        host: the ``Host`` header for the upstream.
        target_prefix: before every forwarded target (the absolute-form's
            scheme and authority when the upstream is reached through an
            HTTP proxy).
        proxy_headers: headers for that upstream proxy (not recorded).
        url: the proxy's own URL, for the 501 that refuses ``CONNECT``.
        count_chats: count the chats as they end (:attr:`chats`), which
            parses every response a second time; off, nothing is parsed on
            the way (the cassette is parsed once, at the end).
        profile: the API's profile: which exchanges are chats (GPTalk's
            streams; every exchange under ``generic``), what is redacted.
        store: where the recorded responses' bytes are kept until the
            cassette is built (see :class:`Recorder`); default: in memory.
        identity: ask the upstream for bodies in no content coding: each
            request goes up with ``Accept-Encoding: identity`` in place of
            the client's (which the cassette keeps, so that the same client
            matches it on replay).  A compressed body is one redaction can
            neither read nor change (see ``redact``); any client takes an
            identity body (RFC 9110 section 12.5.3).  Off, the client's
            header goes up as sent, for a recording that is not redacted.
    """

    def __init__(
        self,
        upstream: str,
        *,
        host: str,
        target_prefix: str = "",
        proxy_headers: Sequence[tuple[str, str]] = (),
        url: str = "",
        count_chats: bool = True,
        profile: Profile = GPTALK,
        store: ChunkStore | None = None,
        identity: bool = True,
    ) -> None:
        self.profile = profile
        self.identity = identity
        self.recorder = Recorder(upstream, profile=profile, store=store)
        self.upstream = upstream
        self.host = host.encode("ascii")
        self.target_prefix = target_prefix.encode("ascii")
        self.proxy_headers = tuple(
            (n.encode("latin-1"), v.encode("latin-1")) for n, v in proxy_headers
        )
        self.url = url
        self.count_chats = count_chats
        #: Chats recorded: stream responses that ended (whole or cut).
        self.chats = 0
        # The field lines its clients send, read once (see KnownFields), and
        # what each request's came to on the way up (see _forwarded): a
        # block's headers as forwarded (kept by the recorder) and their
        # bytes, the same for every request with that block; apart for a
        # request that gets a content-length its block did not have (a POST
        # without one) and one that does not.  Each capped as KnownFields is
        # (MAX_KNOWN_BLOCKS blocks of at most MAX_KNOWN_BLOCK bytes; emptied
        # when one too many).
        self._known_fields = KnownFields()
        self._forwarded: tuple[dict[bytes, _Forwarded], dict[bytes, _Forwarded]] = ({}, {})
        # Requests forwarded but not yet recorded (``client_data``'s
        # ``record_later``), in the order they went, shared by the
        # connections so the recorder hears every call in its order: each
        # call into the proxy records them first.  So they are held only
        # until the driver's next call, never more than one client read's
        # requests (which the recorder keeps anyway, right after).
        self._held: list[_Held] = []
        # Refusals given so far (see MAX_NOTED_REFUSALS).
        self._refusals = 0

    def _refuse(self, status: int, reason: bytes, text: str) -> ToClient:
        """The answer that refuses a request (the connection closes after it),
        with its note while MAX_NOTED_REFUSALS are not reached."""
        self._refusals = count = self._refusals + 1
        if count <= MAX_NOTED_REFUSALS:
            # (Partly the client's bytes: escaped and cut, one line.)
            note = f"refused a request ({status}): {escaped(text)}"
        elif count == MAX_NOTED_REFUSALS + 1:
            note = f"refused a request ({status}); further refusals are not noted"
        else:
            note = ""
        return ToClient(_refusal(status, reason, text), True, note)

    def record_held(self) -> None:
        """Record the requests ``client_data(..., record_later=True)`` held
        back (forwarded, not yet recorded), in the order they went."""
        held, self._held = self._held, []
        sent_request = self.recorder.sent_request
        for number, method, target, headers, body, t in held:
            sent_request(number, method=method, target=target, headers=headers, body=body, t=t)

    def connection(self) -> ProxyConnection:
        """The proxy side of one new client connection."""
        return ProxyConnection(self)

    def cassette(
        self, *, recorded_at: str, redact: bool = True, secrets: Iterable[str] = ()
    ) -> Cassette:
        """What was recorded so far; redacted unless ``redact`` is False."""
        return self.recorder.cassette(recorded_at=recorded_at, redact=redact, secrets=secrets)


class _Held(NamedTuple):
    """A request forwarded, to be recorded (see ProxyRecorder._held): the
    arguments of its ``Recorder.sent_request``."""

    connection: int
    method: bytes
    target: bytes
    headers: Sequence[tuple[bytes, bytes]]
    body: bytes
    t: float


class _Forwarded(NamedTuple):
    """A block of field lines as forwarded (see ProxyConnection._forwarded)."""

    headers: tuple[tuple[bytes, bytes], ...]
    #: The field lines' bytes, the blank line after them included.
    wire: bytes


class ProxyConnection:
    """One client connection and the upstream connection it is forwarded on."""

    def __init__(self, proxy: ProxyRecorder) -> None:
        self._proxy = proxy
        self._requests = RequestReader(MAX_PROXIED_REQUEST, proxy._known_fields)
        self._number: int | None = None  # the recorder's, once a request went up
        # The responses being counted: h11's client side mirrors the exchange.
        self._mirror: h11.Connection | None = (
            h11.Connection(h11.CLIENT) if proxy.count_chats else None
        )
        self._waiting: deque[tuple[bytes, bytes]] = deque()  # (method, path) not answered
        self._closed = False
        #: Upstream reads passed on so far (:meth:`upstream_data`,
        #: :meth:`upstream_stored`): a driver that waits for the rest of an
        #: answer waits while this grows (an idle wait, not a total one).
        self.upstream_reads = 0

    @property
    def follows_responses(self) -> bool:
        """Whether :attr:`pending` knows: responses are followed (``count_chats``)
        and were readable so far.  When False, a response may be in flight
        whatever :attr:`pending` says."""
        return self._mirror is not None

    @property
    def partial(self) -> bool:
        """Bytes of a request not yet complete are held (the driver counts
        them against its server-wide budget)."""
        return not self._requests._fresh  # (its property, without the call)

    def interim_response(self) -> bytes:
        """``HTTP/1.1 100 Continue`` for the request being read when it
        asked for one (``Expect: 100-continue``) and its body has not come,
        once; else ``b""``: the proxy reads a request whole before it
        forwards it, so the client's wait for the upstream's 100 would last
        its whole timeout (curl: 1 s).  Only where no response can be on
        its way to the client, which the 100 would cut into: before the
        connection's first request went up, or with responses followed and
        none pending.  The request goes up with its ``Expect`` (the
        upstream, which has the body then, may answer a 100 too: it reaches
        the client, which takes any number, and the recorder keeps it
        before the response)."""
        if self._closed or (self._number is not None and not (self._mirror and not self._waiting)):
            return b""
        return self._requests.interim_response()

    @property
    def pending(self) -> bool:
        """A forwarded request has not had its whole response yet (False
        when responses are not followed: see ``count_chats``)."""
        return self._mirror is not None and bool(self._waiting)

    def client_data(
        self, data: bytes, t: float, *, record_later: bool = False
    ) -> list[ProxyAction]:
        """Bytes the client wrote at ``t``; what to write where, in order.

        ``record_later``: the requests forwarded are recorded (as read at
        ``t``) by the driver's next call into the proxy, or by
        :meth:`ProxyRecorder.record_held` once it wrote them: filing a
        request, a third of the work here, then waits until the upstream
        has it, not the other way round.  The cassette is the same.
        """
        proxy = self._proxy
        if proxy._held:
            proxy.record_held()
        if self._closed:
            return []
        if self._mirror is None:
            fast = self._known_request(data, t, record_later)
            if fast is not None:
                return fast
        try:
            requests = self._requests.feed(data, t)
        except InvalidHTTP as exc:
            self._closed = True
            status = exc.status_hint
            return [proxy._refuse(status, b"Bad Request", f"invalid request: {exc}")]
        actions: list[ProxyAction] = []
        for head, body, _ in requests:
            if head.method == b"CONNECT":
                self._closed = True
                text = (
                    "this is a recording proxy for plain HTTP: CONNECT (HTTPS through a proxy) "
                    f"cannot be recorded; point the client at {self._proxy.url or 'the proxy URL'} "
                    "as its service URL instead"
                )
                actions.append(proxy._refuse(501, b"Not Implemented", text))
                return actions
            if len(self._waiting) >= MAX_PIPELINED:
                self._closed = True
                text = f"more than {MAX_PIPELINED} requests sent ahead of their responses"
                actions.append(proxy._refuse(429, b"Too Many Requests", text))
                return actions
            target, headers, wire = self._forwarded(head, body)
            number = self._number
            if number is None:
                number = self._number = proxy.recorder.open_connection()
            # What went upstream, as the recorder would read it back from the
            # wire (it is not parsed a second time).
            if record_later:
                proxy._held.append(_new(_Held, (number, head.method, target, headers, body, t)))
            else:
                proxy.recorder.sent_request(
                    number, method=head.method, target=target, headers=headers, body=body, t=t
                )
            if self._mirror is not None:
                self._waiting.append((head.method, origin_form(head.target).split(b"?", 1)[0]))
                self._mirror_next()
            actions.append(ToUpstream(wire))
        return actions

    def _known_request(self, data: bytes, t: float, record_later: bool) -> list[ProxyAction] | None:
        """The common request the fast way: ``data`` one whole plain request
        whose field lines were read and forwarded before (see
        RequestReader.known_whole and _forwarded), responses not followed;
        else None (client_data reads it).  The same bytes forwarded and the
        same request recorded as client_data's way: the field lines' memos
        are the same, without the ReadRequest, RequestHead and calls made
        for each request (about half the core's work per request)."""
        found = self._requests.known_whole(data)
        if found is None:
            return None
        method, target, fields, body = found
        proxy = self._proxy
        forwarded = proxy._forwarded[bool(body) or method in _WITH_BODY].get(fields.block)
        if forwarded is None or method == b"CONNECT":
            return None
        target = proxy.target_prefix + origin_form(target)
        wire = b"".join([method, b" ", target, b" HTTP/1.1\r\n", forwarded.wire, body])
        number = self._number
        if number is None:
            number = self._number = proxy.recorder.open_connection()
        if record_later:
            proxy._held.append(_new(_Held, (number, method, target, forwarded.headers, body, t)))
        else:
            proxy.recorder.sent_request(
                number, method=method, target=target, headers=forwarded.headers, body=body, t=t
            )
        return [ToUpstream(wire)]

    def _forwarded(
        self, head: RequestHead, body: bytes
    ) -> tuple[bytes, Sequence[tuple[bytes, bytes]], bytes]:
        """The request for the upstream: its target, its headers, its bytes."""
        proxy = self._proxy
        target = proxy.target_prefix + origin_form(head.target)
        with_length = bool(body) or head.method in _WITH_BODY
        # A block of field lines known (head.fields) and forwarded before
        # goes as it went then: the same bytes, the same headers, the same
        # content-length (the body's, which the block says).
        known = proxy._forwarded[with_length]
        found = known.get(head.fields) if head.fields else None
        if found is None:
            found = self._forward_fields(head, len(body), with_length)
            if head.fields:
                remember(known, head.fields, found, MAX_KNOWN_BLOCKS)
        wire = b"".join([head.method, b" ", target, b" HTTP/1.1\r\n", found.wire, body])
        return target, found.headers, wire

    def _forward_fields(self, head: RequestHead, length: int, with_length: bool) -> _Forwarded:
        """The headers of a request with a body of ``length`` bytes as
        forwarded, and their lines' bytes."""
        proxy = self._proxy
        headers = [(b"host", proxy.host)]
        # head.headers has each of head.raw_headers' names in lowercase.
        headers += [
            pair
            for pair, (name, _) in zip(head.raw_headers, head.headers, strict=True)
            if name not in _DROPPED
        ]
        if with_length:
            headers.append((b"content-length", b"%d" % length))
        headers += proxy.proxy_headers
        # The cassette keeps the client's Accept-Encoding; the upstream is
        # asked for identity (see ``identity``).
        sent = headers
        if proxy.identity:
            sent = [pair for pair in sent if pair[0].lower() != b"accept-encoding"]
            sent.append((b"accept-encoding", b"identity"))
        # One join per header and one for the lines.
        fields = b"\r\n".join([b": ".join(pair) for pair in sent])
        return _Forwarded(tuple(headers), fields + b"\r\n\r\n")

    def _mirror_next(self) -> None:
        mirror = self._mirror
        if mirror is None or mirror.our_state is not h11.IDLE or not self._waiting:
            return
        method, _ = self._waiting[0]
        mirror.send(h11.Request(method=method, target=b"/", headers=[(b"host", b"x")]))
        mirror.send(h11.EndOfMessage())

    def upstream_data(self, data: bytes, t: float) -> bytes:
        """The upstream wrote ``data`` at ``t`` (``b""``: it closed).

        Returns the bytes for the client: the same read, whole, to be written
        before the next upstream read.
        """
        self.upstream_reads += 1
        if self._proxy._held:
            self._proxy.record_held()
        number = self._number
        if number is None:
            return data  # nothing was asked: not part of any exchange
        if data or self._waiting or self._mirror is None:
            # An idle keep-alive connection closed is no exchange's end.
            self._proxy.recorder.received(number, data, t)
        self._count(data)
        return data

    def upstream_stored(self, key: int, t: float) -> None:
        """The upstream wrote a read at ``t`` that the driver put in the
        recorder's store itself (``key``: the store's, for that read) and
        passes on to the client, whole, before the next read: the same as
        :meth:`upstream_data` for a driver that moves the bytes without
        reading them (Linux's ``splice``).  Only where responses are not
        followed (:attr:`follows_responses` False): nothing here reads the
        bytes."""
        if self._mirror is not None:
            raise LocalProtocolError("responses are followed: their bytes must be read")
        self.upstream_reads += 1
        if self._proxy._held:
            self._proxy.record_held()
        number = self._number
        if number is not None:  # else nothing was asked: no exchange's bytes
            self._proxy.recorder.received_stored(number, key, t)

    def recording_ended(self) -> None:
        """The proxy stopped with this connection open (a signal, its
        ``chats`` reached, the end of its block): a response cut short
        here is recorded as ``stopped`` (see :meth:`Recorder.recording_ended`)."""
        self._tell(self._proxy.recorder.recording_ended)

    def client_closed(self) -> None:
        """The client closed its side of the connection, and the proxy
        passes the close on to the upstream: a close that follows a whole
        response is the upstream's answer to it (see
        :meth:`Recorder.client_closed`)."""
        self._tell(self._proxy.recorder.client_closed)

    def _tell(self, mark: Callable[[int], None]) -> None:
        """Tell the recorder, with ``mark``, how this connection's last
        exchange ended (the requests held are filed first: the exchange may
        be one of them)."""
        if self._proxy._held:
            self._proxy.record_held()
        if self._number is not None:
            mark(self._number)

    def _is_chat(self, path: bytes) -> bool:
        return self._proxy.profile.counts_as_chat(path.decode("latin-1"))

    def _count(self, data: bytes) -> None:
        mirror = self._mirror
        if mirror is None:
            return
        mirror.receive_data(data)
        while self._waiting:
            try:
                event = next_h11_event(mirror)
            except InvalidHTTP:
                # Cut mid-response (a stream cut is still a chat), or not
                # countable HTTP: the recorder records it all the same.
                if not data and self._is_chat(self._waiting[0][1]):
                    self._proxy.chats += 1
                self._mirror = None
                self._waiting.clear()
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                _, path = self._waiting.popleft()
                if self._is_chat(path):
                    self._proxy.chats += 1
                if isinstance(event, h11.ConnectionClosed) or mirror.our_state is h11.MUST_CLOSE:
                    self._mirror = None
                    self._waiting.clear()
                    return
                mirror.start_next_cycle()
                self._mirror_next()
