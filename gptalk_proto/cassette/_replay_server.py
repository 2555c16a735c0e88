"""The replay server, sans IO: cassettes played to any HTTP client, many at once.

The client-side replayer (:mod:`._replay`) answers one client, ours, inside
its transport.  This is the server side of the same replay, for clients that
are not ours (curl, a browser, another language's client, the g4f class):
bytes in from a socket, and out the recorded reads, each one write, each
with the wait the recording had before it.  The driver only moves bytes and
sleeps the waits given here.

Sessions
    Each client plays a cassette from its first step in a *session* of its
    own, with a :class:`Replayer` of its own, so the matching (field by
    field, redaction placeholders, bindings) is the client-side replayer's,
    not a copy.  A request finds its session by, in order:

    1. a token this server handed out (``authorization: Bearer ...`` or
       ``?token=``): tokens are unique per session;
    2. the connection it came on, while that session has steps left;
    3. for a login on a new connection: a session parked before a login
       (it played steps, nothing is connected to it, its next step is a
       login the request matches; the oldest first) -- a client that logs
       in again on a new connection, after a quota error, goes on;
    4. else a new session, in the first cassette whose first step matches.

    Given a ``replayer`` factory, each cassette has one replayer instead,
    shared by every session, which says which step a request is (the
    transports' ``EpisodeReplayer``: a login begins the first login episode
    not yet begun, a chat the first chat whose first step matches, in any
    order).  A session is then its tokens alone: a request goes to the
    session of its token, else of its connection, else to a new one; and
    :meth:`ReplayServer.unplayed` lists only the steps the replayers owe
    (``Replayer.begun_steps``).  So clients replay any part of a cassette
    several tests recorded, and all of them together play it once.

Played
    A step counts as played (:meth:`ReplayServer.unplayed`, ``--once``) once
    its whole response was written: its answer ends with a
    :class:`ReplayDelivered`, which the driver hands back to
    :meth:`ReplayServerConnection.delivered` after every write before it
    returned.  A client that goes away mid-response (or that the driver
    drops as too slow) leaves the step unplayed, though its session has
    moved past it: a run cut short does not pass for a whole one.  Answers
    handed to the driver and not yet reported are counted
    (:attr:`ReplayServer.answering`), so that a driver that stops can let
    them finish first.

Tokens
    The recorded tokens are placeholders (``<login-token-1>.....``); each
    session hands out its own, of the placeholder's length, so every framing
    length (``content-length``, chunk sizes) stays true.  A request's tokens
    are turned back into the placeholders before matching.  With
    ``entropy``, the rest of a token after its session and serial number is
    random: another client cannot guess it and play that session's steps.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._errors import InvalidHTTP, LocalProtocolError
from ._format import Cassette, CassetteError, Interaction
from ._profiles import Profile
from ._replay import MAX_REPLAY_REQUEST, CassetteMismatch, Replayer, hiding
from ._replay_session import ISSUED, Session
from ._request_reader import RequestHead, RequestReader

__all__ = [
    "MAX_PIPELINED_ANSWERS",
    "MAX_REPLAY_SESSIONS",
    "MISMATCH_STATUS",
    "ReplayClose",
    "ReplayDelivered",
    "ReplayMismatch",
    "ReplayServer",
    "ReplayServerConnection",
    "ReplayWrite",
]

#: Sessions held at once.  A session is a few hundred bytes plus its token
#: maps; past the cap, the oldest session that played every step is dropped
#: to make room, else the oldest that no connection is on (clients that
#: logged in and went away must not fill the server for good; one that comes
#: back with a token of it is told the session is gone), and when every
#: session is on a connection, a new client gets a 409 naming the cap: a
#: bounded server, not one that grows with every login.
MAX_REPLAY_SESSIONS = 100_000

#: Mismatches kept for :meth:`ReplayServer.mismatches` (each is also handed
#: to the driver as it happens): a client that loops on a wrong request must
#: not grow the server without bound.
MAX_KEPT_MISMATCHES = 100

#: Requests answered from one read of a client's bytes (HTTP/1.1
#: pipelining); the next gets a 429 and the connection closes, as at the
#: recording proxy.  Each answer is a recorded response, held whole until the
#: driver has written it: 64 KB of small pipelined requests for a step of a
#: megabyte would otherwise hold hundreds of megabytes for a client that
#: reads nothing.  Clients send one request at a time.
MAX_PIPELINED_ANSWERS = 16

#: The status of a request that matches nothing: RFC 9110 section 15.5.10,
#: "the request could not be completed due to a conflict with the current
#: state of the target resource" -- the cassette's next step.  Not a 5xx, so
#: a client's retry policy does not hide the divergence behind retries.
MISMATCH_STATUS = 409


@dataclass(frozen=True)
class ReplayWrite:
    """Write ``data`` after waiting ``delay`` seconds: one recorded read."""

    data: bytes
    delay: float


@dataclass(frozen=True)
class ReplayClose:
    """Close the connection (the recorded server closed, or after an error)."""


@dataclass(frozen=True)
class ReplayMismatch:
    """A request matched nothing; ``text`` says where and how (for stderr).
    The 409 answering it is among the actions too."""

    text: str


@dataclass(frozen=True)
class ReplayDelivered:
    """Every write before this one went out whole: hand it back to
    :meth:`ReplayServerConnection.delivered`, and step ``step`` (from 0) of
    cassette ``cassette`` counts as played.  Not sent for a response whose
    writes failed."""

    cassette: int
    step: int


ReplayAction = ReplayWrite | ReplayClose | ReplayMismatch | ReplayDelivered

# The ``msg`` of a refusal, by status (any other: the request was no HTTP).
_REFUSALS = {
    MISMATCH_STATUS: "the request does not match the cassette",
    429: "too many requests sent ahead of their responses",
}


class ReplayServer:
    """The cassettes' steps, played to many clients, each in its own session.

    Args:
        cassettes: what to play; a new session starts in the first whose
            first step the request matches.
        speed: 1.0 plays at the recorded pace, 2.0 twice as fast, 0 at once.
        max_gap: cap on any one wait, in seconds, after scaling (None: none).
        names: how to name each cassette in messages (default: its number).
        profile: how requests match, for every cassette (default: each
            cassette's own).
        entropy: ``n -> n random bytes`` for the secret part of the tokens
            handed out (``os.urandom`` in the server); None: tokens are the
            session and serial numbers alone, which any client can guess.
        secrets: values never quoted in a mismatch (its 409, the texts
            :meth:`mismatches` keeps): each is ``<secret-N>`` there, as the
            client-side replayer shows them (see ``Replayer``).
        replayer: ``cassette -> Replayer``, one shared by every session (see
            the module's docstring); it matches under its own profile and
            secrets.  None: each session plays a cassette whole, from its
            first step.
    """

    def __init__(
        self,
        cassettes: Sequence[Cassette],
        *,
        speed: float = 1.0,
        max_gap: float | None = None,
        names: Sequence[str] | None = None,
        profile: Profile | None = None,
        entropy: Callable[[int], bytes] | None = None,
        secrets: Sequence[str] = (),
        replayer: Callable[[Cassette], Replayer] | None = None,
    ) -> None:
        if not cassettes:
            raise LocalProtocolError("a replay server needs at least one cassette")
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed >= 0:
            raise LocalProtocolError(f"speed must be a number >= 0, not {speed!r}")
        if max_gap is not None and not max_gap >= 0:
            raise LocalProtocolError(f"max_gap must be a number >= 0, not {max_gap!r}")
        if names is not None and len(names) != len(cassettes):
            raise LocalProtocolError("one name per cassette")
        self.cassettes = tuple(cassettes)
        self.names = (
            tuple(names)
            if names is not None
            else tuple(f"cassette {n + 1}" for n in range(len(cassettes)))
        )
        self.speed = float(speed)
        self.profile = profile
        self.max_gap = max_gap
        self.entropy = entropy
        self.secrets = tuple(secrets)
        self._hide = hiding(self.secrets)
        self._sessions: OrderedDict[int, Session] = OrderedDict()
        self._numbers = 0
        self._played = [set[int]() for _ in cassettes]
        # Answers handed to a driver and not yet reported written whole
        # (their ReplayDelivered), on connections still open (see answering).
        self._answering = 0
        self._mismatches: list[str] = []
        self._shared = None if replayer is None else tuple(replayer(c) for c in self.cassettes)

    # -- what was played ---------------------------------------------------------

    @property
    def sessions(self) -> int:
        """Sessions held now."""
        return len(self._sessions)

    @property
    def all_played(self) -> bool:
        """Every step of every cassette was played by some session (with a
        shared replayer too, where :meth:`unplayed` lists the owed ones)."""
        return all(
            len(played) == len(cassette.interactions)
            for played, cassette in zip(self._played, self.cassettes, strict=True)
        )

    @property
    def answering(self) -> int:
        """Answers a driver is still writing: handed over with their
        :class:`ReplayDelivered` and not yet reported written whole, on
        connections not closed.  A driver that stops the server gives them a
        moment first: a client may have read one whole while its last write
        waited on flow control, and its step counts only once reported."""
        return self._answering

    def played(self, cassette: int = 0) -> int:
        """How many of that cassette's steps some session played."""
        return len(self._played[cassette])

    def unplayed(self) -> list[tuple[str, int, str]]:
        """(cassette name, step number from 1, kind) of each step no session played."""
        return [
            (self.names[c], n + 1, cassette.interactions[n].kind)
            for c, cassette in enumerate(self.cassettes)
            for n in (
                range(len(cassette.interactions))
                if self._shared is None
                else self._shared[c].begun_steps()
            )
            if n not in self._played[c]
        ]

    def mismatches(self) -> list[str]:
        """The texts of the last mismatches (at most ``MAX_KEPT_MISMATCHES``)."""
        return list(self._mismatches)

    def connection(self) -> ReplayServerConnection:
        """The server side of one new connection."""
        return ReplayServerConnection(self)

    # -- routing -------------------------------------------------------------------

    def _gap(self, recorded: float) -> float:
        if self.speed == 0:
            return 0.0
        wait = max(recorded, 0.0) / self.speed
        return wait if self.max_gap is None else min(wait, self.max_gap)

    def _by_token(self, data: bytes) -> Session | str | None:
        """The session whose token ``data`` carries; None if no token; for a
        token of our form that no session holds, why not."""
        for found in ISSUED.finditer(data):
            session = self._sessions.get(int(found.group(1), 16))
            if session is None:
                return "the token sent was handed out by a session this server no longer holds"
            if found.group(0) not in session.placeholders:
                return "the token sent was not handed out by this server"
            return session
        return None

    def _new_session(self, cassette: int) -> Session | None:
        if len(self._sessions) >= MAX_REPLAY_SESSIONS:
            done = next((n for n, s in self._sessions.items() if s.finished), None)
            if done is None:
                done = next((n for n, s in self._sessions.items() if not s.attached), None)
            if done is None:
                return None
            del self._sessions[done]
        self._numbers += 1
        replayer = (
            Replayer(self.cassettes[cassette], self.profile, secrets=self.secrets)
            if self._shared is None
            else self._shared[cassette]
        )
        session = Session(self._numbers, cassette, replayer, self.entropy)
        self._sessions[session.number] = session
        return session

    def _route(
        self,
        conn: ReplayServerConnection,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> tuple[Session, Interaction]:
        raw = b"\n".join([target, *(v for _, v in headers), body])
        found = self._by_token(raw)
        if isinstance(found, str):
            path = target.split(b"?")[0].decode("ascii", "replace")
            raise CassetteMismatch(0, f"{method} {path}", [found], secrets=self.secrets)
        if self._shared is not None:
            return self._route_shared(
                conn, found, method=method, target=target, headers=headers, body=body
            )
        candidates: list[Session] = []
        if isinstance(found, Session):
            candidates = [found]
        elif conn.session is not None and not conn.session.finished:
            candidates = [conn.session]
        else:
            candidates = [
                s
                for s in self._sessions.values()
                if not s.attached
                and not s.finished
                and s.replayer.played > 0
                and s.replayer.cassette.interactions[s.replayer.played].kind == "login"
            ]
        first_error: CassetteMismatch | None = None
        for session in candidates:
            try:
                return session, self._match(session, method, target, headers, body)
            except CassetteMismatch as exc:
                first_error = first_error or exc
        if isinstance(found, Session) or (conn.session is not None and not conn.session.finished):
            assert first_error is not None
            raise first_error
        for number in range(len(self.cassettes)):
            replayer = Replayer(self.cassettes[number], self.profile, secrets=self.secrets)
            trial = Session(0, number, replayer)
            try:
                self._match(trial, method, target, headers, body)
            except CassetteMismatch as exc:
                first_error = first_error or exc
                continue
            fresh = self._new_session(number)
            if fresh is None:
                raise CassetteMismatch(0, "new session", ["too many sessions held at once"])
            return fresh, self._match(fresh, method, target, headers, body)
        assert first_error is not None
        raise first_error

    def _route_shared(
        self,
        conn: ReplayServerConnection,
        found: Session | None,
        *,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> tuple[Session, Interaction]:
        # The shared replayers (see the module's docstring): a token's
        # session, whose tokens the request carries; else its connection's
        # cassette first, then the others, and a new session where one
        # matches (a request without our tokens reads the same to any).
        if found is not None:
            return found, self._match(found, method, target, headers, body)
        assert self._shared is not None
        order = list(range(len(self.cassettes)))
        if conn.session is not None:
            order.remove(conn.session.cassette)
            order.insert(0, conn.session.cassette)
        first_error: CassetteMismatch | None = None
        for number in order:
            trial = Session(0, number, self._shared[number])
            try:
                item = self._match(trial, method, target, headers, body)
            except CassetteMismatch as exc:
                first_error = first_error or exc
                continue
            if conn.session is not None and conn.session.cassette == number:
                return conn.session, item
            fresh = self._new_session(number)
            if fresh is None:
                # The step was begun and is never answered: it stays
                # unplayed, so the refusal is not lost in a passing run.
                raise CassetteMismatch(0, "new session", ["too many sessions held at once"])
            return fresh, item
        assert first_error is not None
        raise first_error

    def _match(
        self,
        session: Session,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> Interaction:
        return session.replayer.match(
            method,
            session.recorded(target).decode("ascii", "replace"),
            [(n.decode("latin-1"), session.recorded(v).decode("latin-1")) for n, v in headers],
            session.recorded(body),
        )

    def _answer(
        self, conn: ReplayServerConnection, head: RequestHead, body: bytes
    ) -> list[ReplayAction]:
        method = head.method.decode("ascii", "replace")
        headers = head.headers
        try:
            session, item = self._route(conn, method, head.target, headers, body)
        except CassetteMismatch as exc:
            return self._refuse(exc)
        step = session.replayer.last_step
        assert step is not None  # (it matched a step)
        if conn.session is not session:
            if conn.session is not None:
                conn.session.attached -= 1
            session.attached += 1
            conn.session = session
        actions: list[ReplayAction] = []
        response = item.response
        wire = session.handed_out(response.wire)
        at, before = 0, item.request.t
        for chunk in response.chunks:
            size = len(chunk.data)
            actions.append(ReplayWrite(wire[at : at + size], self._gap(chunk.t - before)))
            at += size
            before = chunk.t
        # Played once written whole (see "Played" above), not when matched.
        actions.append(ReplayDelivered(session.cassette, step))
        conn._answering += 1
        self._answering += 1
        closes = (
            response.end != "complete"
            or any(n.lower() == "connection" and "close" in v.lower() for n, v in response.headers)
            or any(n == b"connection" and b"close" in v.lower() for n, v in headers)
        )
        if closes:
            actions.append(ReplayClose())
        return actions

    def _refuse(self, error: CassetteError, status: int = MISMATCH_STATUS) -> list[ReplayAction]:
        # A mismatch is scrubbed already (its values before they were cut);
        # this covers the other refusals, which quote what the client sent.
        text = self._hide(str(error))
        if len(self._mismatches) >= MAX_KEPT_MISMATCHES:
            del self._mismatches[0]
        self._mismatches.append(text)
        step = getattr(error, "step", None)
        document = {
            "code": status,
            "msg": _REFUSALS.get(status, "the request is not valid HTTP"),
            "step": None if step is None else step + 1,
            "differences": [self._hide(d) for d in getattr(error, "differences", [])],
            "detail": text,
        }
        body = json.dumps(document, ensure_ascii=False).encode()
        # RFC 9112 section 4: the reason phrase may be empty.
        head = (
            b"HTTP/1.1 %d \r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % (status, len(body))
        )
        return [ReplayMismatch(text), ReplayWrite(head + body, 0.0), ReplayClose()]


class ReplayServerConnection:
    """One connection to a :class:`ReplayServer`: requests in, actions out."""

    def __init__(self, server: ReplayServer) -> None:
        self._server = server
        self._requests = RequestReader(MAX_REPLAY_REQUEST)
        self.session: Session | None = None
        self._done = False
        # Its answers not yet reported written whole (see ReplayServer.answering).
        self._answering = 0

    def receive_data(self, data: bytes) -> list[ReplayAction]:
        """Bytes the client wrote; the actions that answer the requests they
        completed, in order.  After a :class:`ReplayClose`, nothing more."""
        if self._done:
            return []
        try:
            requests = self._requests.feed(data)
        except InvalidHTTP as exc:
            self._done = True
            return self._server._refuse(
                CassetteError(f"the client sent invalid HTTP during replay: {exc}"),
                status=exc.status_hint,
            )
        actions: list[ReplayAction] = []
        for number, (head, body, _) in enumerate(requests):
            if number == MAX_PIPELINED_ANSWERS:
                self._done = True
                text = f"more than {MAX_PIPELINED_ANSWERS} requests sent ahead of their responses"
                actions.extend(self._server._refuse(CassetteError(text), status=429))
                break
            actions.extend(self._server._answer(self, head, body))
            if isinstance(actions[-1], ReplayClose):
                self._done = True
                break
        return actions

    @property
    def partial(self) -> bool:
        """Bytes of a request not yet complete are held (the driver counts
        them against its server-wide budget)."""
        return not self._requests._fresh  # (its property, without the call)

    def interim_response(self) -> bytes:
        """``HTTP/1.1 100 Continue`` for the request being read when it
        asked for one and its body has not come (see
        :meth:`RequestReader.interim_response`), once; else ``b""``.  The
        driver writes it after the answers :meth:`receive_data` gave."""
        return b"" if self._done else self._requests.interim_response()

    def delivered(self, action: ReplayDelivered) -> None:
        """The writes before ``action`` went out whole: its step is played."""
        self._server._played[action.cassette].add(action.step)
        if self._answering:
            self._answering -= 1
            self._server._answering -= 1

    def close(self) -> None:
        """The connection is gone: its session may be resumed elsewhere."""
        self._server._answering -= self._answering  # never to be written
        self._answering = 0
        if self.session is not None:
            self.session.attached -= 1
            self.session = None
        self._done = True
