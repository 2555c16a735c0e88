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

``new_episodes`` replays while the requests match, per connection: at the
first request no episode has, that connection switches to a live, recorded
connection and sends the request there.  Every connection opened afterwards
tries the cassette again.  The saved cassette is the whole recorded
cassette, then what was recorded (``Cassette.extend``): nothing recorded is
ever dropped.

For GPTalk a caveat follows: a request sent live after a replayed login
carries the replayed (placeholder) token, which the live service refuses;
the client then logs in again on its own, and that is recorded too.  The new
episodes then begin with that refused request, which is just what the client
sends again when it replays them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace

from gptalk_proto.cassette import (
    Cassette,
    CassetteError,
    CassetteMismatch,
    Interaction,
    Replayer,
    ReplayState,
    ReplayTiming,
    rechunker,
)

__all__ = ["MAX_PENDING_REQUEST", "EpisodeReplayer", "Matching", "split_episodes"]

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
    reached in the episodes begun.
    """

    def __init__(self, cassette: Cassette, matching: Matching | None = None) -> None:
        self._matching = matching or Matching()
        super().__init__(cassette, secrets=self._matching.secrets)
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
                secrets=self.secrets,
            )
            for steps in self.episodes
        ]
        #: Episodes begun, in the order they began.
        self._begun: list[int] = []

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
        best: CassetteMismatch | None = None
        for index in self._candidates():
            replayer = self._replayers[index]
            try:
                item = replayer.match(method, target, sent_headers, sent_body)
            except CassetteMismatch as mismatch:
                step = self.episodes[index][replayer.played]
                if best is None or len(mismatch.differences) < len(best.differences):
                    kind = self.cassette.interactions[step].kind
                    summary = f"{kind} expected, {method} {path} sent"
                    best = CassetteMismatch(
                        step, summary, mismatch.differences, secrets=self.secrets
                    )
                continue
            if index not in self._begun:
                self._begun.append(index)
            return item
        if best is None:
            raise CassetteMismatch(
                len(self.cassette.interactions),
                f"{method} {path}",
                ["every episode of the cassette was played"],
                secrets=self.secrets,
            )
        raise best


# -- new_episodes ---------------------------------------------------------------------


class _Episodes:
    """What the connections of one new_episodes session share."""

    def __init__(self, existing: Cassette, matching: Matching | None) -> None:
        self.existing = existing
        self.replayer = EpisodeReplayer(existing, matching)
        self._cut = rechunker("recorded")
        self._timing = ReplayTiming()

    def replaying(self) -> bool:
        return not self.replayer.exhausted

    def state(self) -> ReplayState:
        return ReplayState(self.replayer.connection(), self._timing, self._cut)

    def cassette(self, recorded: Cassette) -> Cassette:
        # Every recorded episode is kept, played or not; the new ones follow.
        return self.existing.extend(recorded)


class _Pending:
    """The bytes of the request being matched: sent live whole if it does
    not match (the client never pipelines, so a matched request ends them)."""

    def __init__(self) -> None:
        self.data = b""

    def add(self, data: bytes) -> None:
        if len(self.data) + len(data) > MAX_PENDING_REQUEST:
            raise CassetteError(
                f"a request longer than {MAX_PENDING_REQUEST} bytes cannot be matched"
            )
        self.data += data

    def sent(self, state: ReplayState, data: bytes, now: float) -> bool:
        """Feed ``data`` to the replay; False if the request matched nothing."""
        before = state.connection.current
        self.add(data)
        try:
            state.sent(data, now)
        except CassetteMismatch:
            return False
        if state.connection.current is not before:
            self.data = b""
        return True
