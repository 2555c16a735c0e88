"""Episodes: a cassette replayed in any subset of its chats, and ``new_episodes``.

This is the sans-IO half; the connectors are in ``_async/episodes.py`` and
its generated twin.

A cassette is cut into *episodes*, the units a test may use or leave:

* a login is an episode of its own (the chats after it use its token);
* a chat is an episode: its text request, what the client sent again after a
  refusal (a retry after a 503, a text request sent again), up to and
  including its stream.

:class:`EpisodeReplayer` plays them as vcrpy plays interactions: a request
continues an episode already begun if it is that episode's next step, or
else begins the first episode not yet begun whose first step it is.  So a
test that uses any subset of whole episodes replays, in their recorded
order or not, and the unplayed-steps check covers only the episodes the test
began.  Within an episode the steps keep their order: the protocol is
stateful (the stream follows its text, a retry follows its refusal).

A chat is not tied to the login it was recorded after.  Tests that share a
cassette each logged in when they recorded it, but a replaying test's login
begins the first login episode not yet begun (a login request is the same
whoever sends it), so the client sends that episode's token placeholder
(``<login-token-1>``) where its own chats were recorded with another
(``<login-token-3>``).  A placeholder the client sends stands for the
recorded one of its kind in the step (:meth:`EpisodeReplayer._aliases`),
as a binding: a recorded placeholder stands for one sent placeholder for
the rest of the replay.  So each test replays its own chats whatever login
it makes; where two tests recorded the same request, the first recorded
episode not yet played answers it (as vcrpy plays a shared cassette).

``new_episodes`` replays the requests that match, request by request: a
request no episode has is sent live, on a recorded connection opened for it
(and kept for the connection's next live requests), and the next request
tries the cassette again.  Logins are always sent live (:func:`is_login`):
a replayed login would hand the client a placeholder token, which the
client would then send to the live service with its first new chat.  The
client holds a live token, and replayed chats match it (a recorded
placeholder matches any value).  The saved cassette is the whole recorded
cassette, then what was recorded (``Cassette.extend``): nothing recorded is
ever dropped, and the logins no recorded step used are left out
(:func:`used_logins`), so a run that replays every chat adds nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from gptalk_proto.cassette import (
    PLACEHOLDER,
    Cassette,
    CassetteError,
    CassetteMismatch,
    Interaction,
    Profile,
    Replayer,
    ReplayState,
    ReplayTiming,
    rechunker,
)

__all__ = [
    "MAX_PENDING_REQUEST",
    "EpisodeReplayer",
    "Matching",
    "is_login",
    "split_episodes",
    "used_logins",
]

#: Cap on the bytes of one request held while it is matched against the
#: cassette (``new_episodes`` sends them live if it does not match): the
#: replayer's own cap on one request, so nothing it accepts is cut.
MAX_PENDING_REQUEST = 2 * 1024 * 1024 + 64 * 1024


@dataclass(frozen=True)
class Matching:
    """Request fields replay does not compare, beyond the replayer's own
    (``host``, ``content-length``, ``x-auth-timestamp``, ``created_at``),
    and the values a mismatch never quotes.

    ``ignore_headers`` are header names (any case); ``ignore_fields`` are
    top-level keys of JSON request bodies; ``secrets`` (the ones the
    recording redacted) are ``<secret-N>`` in a mismatch's text.
    """

    ignore_headers: frozenset[str] = frozenset()
    ignore_fields: frozenset[str] = frozenset()
    secrets: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, headers: Iterable[str] = (), fields: Iterable[str] = (), secrets: Iterable[str] = ()
    ) -> Matching:
        return cls(frozenset(h.lower() for h in headers), frozenset(fields), tuple(secrets))

    def headers(self, headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        return tuple((n, v) for n, v in headers if n.lower() not in self.ignore_headers)

    def body(self, body: bytes) -> bytes:
        if not self.ignore_fields or not body:
            return body
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return body
        if not isinstance(parsed, dict) or not self.ignore_fields & parsed.keys():
            return body
        kept = {k: v for k, v in parsed.items() if k not in self.ignore_fields}
        return json.dumps(kept, ensure_ascii=False).encode()

    def interaction(self, item: Interaction) -> Interaction:
        if not self.ignore_headers and not self.ignore_fields:
            return item
        request = replace(
            item.request,
            headers=self.headers(item.request.headers),
            body=self.body(item.request.body),
        )
        return replace(item, request=request)


def split_episodes(cassette: Cassette) -> list[range]:
    """The cassette's episodes, as ranges of step indices (see the module's
    docstring): a new one at each login, and after each login and stream."""
    kinds = [item.kind for item in cassette.interactions]
    if not kinds:
        return []
    starts = [0]
    for index in range(1, len(kinds)):
        if kinds[index] == "login" or kinds[index - 1] in ("login", "stream"):
            starts.append(index)
    ends = [*starts[1:], len(kinds)]
    return [range(start, end) for start, end in zip(starts, ends, strict=True)]


class EpisodeReplayer(Replayer):
    """Plays a cassette's episodes in any order and subset (module docstring).

    ``played`` counts the steps played; :meth:`unplayed` lists the steps not
    reached in the episodes begun (:meth:`begun_steps`: their steps).
    ``profile``: how requests match (default: the cassette's own).  Also the
    replay server's shared replayer (``ReplayServer(replayer=...)``), for
    the plugin's ``gptalk_replay_server`` fixture.
    """

    def __init__(
        self,
        cassette: Cassette,
        matching: Matching | None = None,
        profile: Profile | None = None,
    ) -> None:
        self._matching = matching or Matching()
        super().__init__(cassette, profile, secrets=self._matching.secrets)
        self.episodes = split_episodes(cassette)
        # One core Replayer per episode: it keeps the episode's order and its
        # bindings (the fingerprint a login sent), and names differing fields.
        self._replayers = [
            Replayer(
                replace(
                    cassette,
                    interactions=tuple(
                        self._matching.interaction(cassette.interactions[n]) for n in steps
                    ),
                ),
                self.profile,
                secrets=self.secrets,
            )
            for steps in self.episodes
        ]
        #: Episodes begun, in the order they began.
        self._begun: list[int] = []
        #: Recorded placeholder -> the sent one it stands for (see
        #: :meth:`_aliases`): one per token the cassette's logins handed
        #: out, so no larger than the cassette.
        self._bound: dict[str, str] = {}

    @property
    def played(self) -> int:
        return sum(replayer.played for replayer in self._replayers)

    @property
    def exhausted(self) -> bool:
        """Whether no request could match any more (all begun and finished)."""
        return all(
            replayer.played == len(steps)
            for replayer, steps in zip(self._replayers, self.episodes, strict=True)
        )

    def unplayed(self) -> list[tuple[int, str]]:
        """(step, kind) of every step not played in the episodes begun."""
        items = self.cassette.interactions
        return [
            (n, items[n].kind)
            for index in sorted(self._begun)
            for n in self.episodes[index][self._replayers[index].played :]
        ]

    def begun_steps(self) -> list[int]:
        """The steps of the episodes begun (what a whole replay of them owes)."""
        return [n for index in sorted(self._begun) for n in self.episodes[index]]

    def _aliases(self, sent: set[str], step: int) -> dict[str, str] | None:
        """Which recorded placeholder each of the ``sent`` ones stands for in
        ``step`` (see the module's docstring), or None: each sent one the step
        lacks stands for the one placeholder of its kind the step has and the
        client did not send, if no other sent one is bound to it."""
        request = self.cassette.interactions[step].request
        recorded = _placeholders(request.target, request.headers, request.body)
        aliases = {}
        for placeholder in sent - recorded:
            kind = _kind(placeholder)
            options = [other for other in recorded - sent if _kind(other) == kind]
            if len(options) != 1 or self._bound.get(options[0], placeholder) != placeholder:
                return None
            aliases[placeholder] = options[0]
        return aliases or None

    def _candidates(self) -> list[int]:
        # Episodes begun and not finished first (a request continues its
        # chat), then those not begun, in the cassette's order.
        begun = set(self._begun)
        going = [i for i in self._begun if self._replayers[i].played < len(self.episodes[i])]
        return going + [i for i in range(len(self.episodes)) if i not in begun]

    def match(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> Interaction:
        """The step this request is (see the class); else the
        :class:`CassetteMismatch` of the closest candidate step."""
        path = target.split("?", 1)[0]
        sent_headers = list(self._matching.headers(headers))
        sent_body = self._matching.body(body)
        # Placeholders the client sends back (tokens a replayed login or
        # text handed out), read at the first step the request does not
        # match as it is (a test's own chats match their first candidate).
        sent: set[str] | None = None
        best: CassetteMismatch | None = None
        for index in self._candidates():
            replayer = self._replayers[index]
            step = self.episodes[index][replayer.played]
            try:
                item = replayer.match(method, target, sent_headers, sent_body)
            except CassetteMismatch as mismatch:
                if sent is None:
                    sent = _placeholders(target, sent_headers, sent_body)
                aliases = self._aliases(sent, step) if sent else None
                if aliases is not None:
                    try:
                        item = replayer.match(
                            method, *_aliased(aliases, target, sent_headers, sent_body)
                        )
                    except CassetteMismatch as aliased:
                        if len(aliased.differences) < len(mismatch.differences):
                            mismatch = aliased
                    else:
                        self._bound.update((recorded, s) for s, recorded in aliases.items())
                        return self._began(index, item)
                if best is None or len(mismatch.differences) < len(best.differences):
                    kind = self.cassette.interactions[step].kind
                    summary = f"{kind} expected, {method} {path} sent"
                    best = CassetteMismatch(
                        step, summary, mismatch.differences, secrets=self.secrets
                    )
                continue
            return self._began(index, item)
        if best is None:
            raise CassetteMismatch(
                len(self.cassette.interactions),
                f"{method} {path}",
                ["every episode of the cassette was played"],
                secrets=self.secrets,
            )
        raise best

    def _began(self, index: int, item: Interaction) -> Interaction:
        if index not in self._begun:
            self._begun.append(index)
        self.last_step = self.episodes[index][self._replayers[index].played - 1]
        return item


#: A placeholder's kind: its text up to the number (``<login-token-``, ``<t``).
_KIND = re.compile(r"<[a-z-]*")


def _kind(placeholder: str) -> str:
    match = _KIND.match(placeholder)
    return "" if match is None else match.group()


def _placeholders(target: str, headers: Iterable[tuple[str, str]], body: bytes) -> set[str]:
    """The placeholders in a request's target, header values and body."""
    found = set(PLACEHOLDER.findall(target))
    for _, value in headers:
        found.update(PLACEHOLDER.findall(value))
    found.update(PLACEHOLDER.findall(body.decode("latin-1")))
    return found


def _aliased(
    aliases: dict[str, str], target: str, headers: list[tuple[str, str]], body: bytes
) -> tuple[str, list[tuple[str, str]], bytes]:
    """The request with each sent placeholder replaced by the recorded one it
    stands for (a placeholder is ASCII: the body is read as Latin-1)."""

    def swap(match: re.Match[str]) -> str:
        return aliases.get(match.group(), match.group())

    return (
        PLACEHOLDER.sub(swap, target),
        [(name, PLACEHOLDER.sub(swap, value)) for name, value in headers],
        PLACEHOLDER.sub(swap, body.decode("latin-1")).encode("latin-1"),
    )


# -- new_episodes ---------------------------------------------------------------------


def is_login(profile: Profile, request_line: bytes) -> bool:
    """Whether a request (its first line) is a login, by the profile's steps."""
    parts = request_line.split(b" ")
    path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b""
    return profile.kind(path.decode("latin-1")) == "login"


def used_logins(cassette: Cassette) -> Cassette:
    """``cassette`` without the logins no step uses: each followed by another
    login or by nothing.  What ``new_episodes`` recorded: its logins go live
    (see the module's docstring), and one that served replayed chats only
    would make each run add an episode no replay needs."""
    items = cassette.interactions
    kept = tuple(
        item
        for index, item in enumerate(items)
        if item.kind != "login" or (index + 1 < len(items) and items[index + 1].kind != "login")
    )
    return cassette if len(kept) == len(items) else replace(cassette, interactions=kept)


class _Episodes:
    """What the connections of one new_episodes session share."""

    def __init__(self, existing: Cassette, matching: Matching | None) -> None:
        self.existing = existing
        self.replayer = EpisodeReplayer(existing, matching)
        self.profile = self.replayer.profile
        self._cut = rechunker("recorded")
        self._timing = ReplayTiming()

    def replaying(self) -> bool:
        return not self.replayer.exhausted

    def state(self) -> ReplayState:
        return ReplayState(self.replayer.connection(), self._timing, self._cut)

    def cassette(self, recorded: Cassette) -> Cassette:
        # Every recorded episode is kept, played or not; the new ones follow.
        return self.existing.extend(used_logins(recorded))


class _Pending:
    """The bytes of the request being matched, sent live whole if it does
    not match (capped: :data:`MAX_PENDING_REQUEST`)."""

    def __init__(self) -> None:
        self.data = b""

    def add(self, data: bytes) -> None:
        if len(self.data) + len(data) > MAX_PENDING_REQUEST:
            raise CassetteError(
                f"a request longer than {MAX_PENDING_REQUEST} bytes cannot be matched"
            )
        self.data += data


class _Route:
    """Where one client connection's requests go in ``new_episodes``: each
    to the replay if an episode has it, else live (logins always live).  The
    client never pipelines: its first write after a read begins a request.
    Sans IO: the connectors' streams move the bytes it routes."""

    def __init__(self, episodes: _Episodes) -> None:
        self._episodes = episodes
        #: The replay's side of this connection; a new one after a request
        #: that went live part-fed (its reader holds that request's start).
        self._state: ReplayState | None = None
        self._pending = _Pending()
        #: Whether no byte of the request being sent reached the replay yet.
        self._fresh = True
        #: Whether the client read since its last write (its next write
        #: begins a request).
        self._answered = False
        #: Whether the live connection sends the request being sent and
        #: answers it.
        self.live = False
        #: Set when a request goes live; the stream clears it as it opens
        #: (or checks) its live connection.
        self.went_live = False

    def sent(self, data: bytes) -> bytes:
        """The client's bytes in; what to send live now (``b""``: none)."""
        if self._answered:
            self._answered = self.live = False
            self._fresh = True
            self._pending = _Pending()
        if self.live:
            return data
        self._pending.add(data)
        if self._fresh:
            whole = self._pending.data
            line_end = whole.find(b"\r\n")
            if line_end < 0:
                return b""  # not the whole request line yet
            if not self._episodes.replaying() or is_login(self._episodes.profile, whole[:line_end]):
                return self._go_live()
            self._fresh = False
            if self._state is None:
                self._state = self._episodes.state()
            data = whole
        assert self._state is not None
        before = self._state.connection.current
        try:
            self._state.sent(data, 0.0)
        except CassetteMismatch:
            return self._go_live()
        if self._state.connection.current is not before:
            self._pending = _Pending()  # matched: nothing to send live
        return b""

    def _go_live(self) -> bytes:
        if not self._fresh:
            self._state = None
        data, self._pending = self._pending.data, _Pending()
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        found = PLACEHOLDER.search(head)
        if found is not None:
            # A token the replay handed out (a stream token of a replayed
            # text whose stream did not match): the service would refuse it,
            # and it is no value to send a live service.
            raise CassetteError(
                f"new_episodes: a request that matches no episode carries the placeholder "
                f"{found.group()[:40]!r} (a token the replay handed out); it is not sent "
                "to the service"
            )
        self.live = self.went_live = True
        return data

    def reading(self) -> ReplayState | None:
        """The client reads: the replay's side to read from, or None (the
        live connection's turn, or nothing sent)."""
        self._answered = True
        return None if self.live else self._state

    @property
    def at_eof(self) -> bool:
        """Whether the replay's side ended the connection."""
        return not self.live and self._state is not None and self._state.connection.at_eof
