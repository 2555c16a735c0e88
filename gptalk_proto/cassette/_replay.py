"""Replay, sans IO: the server side of a session, played from a cassette.

A replaying transport hands the client's bytes to a :class:`ReplayConnection`
and gives the client back the recorded response bytes, so the client parses,
through the same core and the same h11 path, the bytes that were on the wire.
Nothing here touches a network.

Requests are matched in order against the cassette, field by field, as the
cassette's :class:`~._profiles.Profile` says (GPTalk's here):

* method, path and query (values compared percent-decoded);
* headers, except ``host``, ``content-length`` and ``x-auth-timestamp``
  (the ``generic`` profile compares no headers);
* JSON bodies key by key, except ``created_at`` (a time) and the profile's
  volatile fields;
* a recorded value holding a redaction placeholder matches any sent value
  with the same text around the placeholder (the secret it stood for is not
  known, and a secret spelled like a value the client makes, such as
  ``stream``, must not break the replay);
* values the client makes up itself (the login ``fingerprint``) are
  *bindings*: the first sight binds the recorded value to the sent one, and
  every later use must agree.  Tokens need no binding: the replayed login gave
  the client the recorded (placeholder) token, which it sends back.

A request that does not match raises :class:`CassetteMismatch` naming the
step and each differing field (the secrets the replay was given are never
quoted there: each is ``<secret-N>``, N its place in the list);
:meth:`Replayer.assert_played` raises :class:`CassetteUnplayed` for steps
never reached.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from .._errors import InvalidHTTP, escaped, excerpt
from .._scrub import hiding as scrub_hiding
from ._format import Cassette, CassetteError, Interaction, RecordedChunk, RecordedRequest
from ._profiles import Profile, profile_named
from ._records import header_map
from ._redact import PLACEHOLDER
from ._request_reader import RequestHead, RequestReader

__all__ = [
    "EOF",
    "CassetteMismatch",
    "CassetteUnplayed",
    "EndOfRecording",
    "ReplayConnection",
    "Replayer",
]


class EndOfRecording(Enum):
    """The type of :data:`EOF` (an Enum of one, so ``is EOF`` narrows)."""

    EOF = "EOF"

    def __repr__(self) -> str:
        return self.name


#: Returned by :meth:`ReplayConnection.next_chunk` where the server closed.
EOF: Final = EndOfRecording.EOF

#: Cap on one request the replayer parses, in bytes.
MAX_REPLAY_REQUEST = 2 * 1024 * 1024

#: Cap on the heads one recorded request remembers as matching it (see
#: :meth:`Replayer.match_known`).  A client sends the same head for a step on
#: every replay (its one per-run header, ``x-auth-timestamp``, comes from the
#: recorded clock), so a few cover replays that straddle a second; past the
#: cap a head is read and matched field by field, as it always can be.
MAX_KNOWN_HEADS = 8


#: Differences a :class:`CassetteMismatch` lists; the rest are counted.  A
#: client's body of 100,000 JSON keys (or a head of 50,000 header lines)
#: differs in as many places: its message, written to stderr and sent back
#: in the 409, stays a screenful, not megabytes.
MAX_DIFFERENCES = 40

_MORE = re.compile(r"\.\.\. and [0-9]+ more differences")


def hiding(secrets: Iterable[str]) -> Callable[[str], str]:
    """``text -> text`` with each of ``secrets``, in every spelling it may take
    on the wire, replaced by ``<secret-N>`` (N: its place in ``secrets``,
    from 1), as redaction names the caller's secrets.

    Replaced wherever they stand, as redaction does (the caller named them,
    at least ``MIN_SECRET_LENGTH`` characters long where they are checked).
    A message is scrubbed before anything in it is cut to a limit: a secret
    cut in half would no longer be found, and its first half would show.
    """
    return scrub_hiding((f"secret-{number}", secret) for number, secret in enumerate(secrets, 1))


class CassetteMismatch(CassetteError):
    """The client sent a request the cassette does not have at this step.

    The summary and each difference are one escaped line of at most
    ``LINE_LIMIT`` characters (they name the client's method, path, header
    and JSON key names), and at most ``MAX_DIFFERENCES`` are listed.
    ``secrets`` are replaced in them (see :func:`hiding`) before the lines
    are escaped and cut.
    """

    def __init__(
        self, step: int, summary: str, differences: list[str], *, secrets: Iterable[str] = ()
    ) -> None:
        hide = hiding(secrets)
        summary = escaped(hide(summary))
        more = len(differences) - MAX_DIFFERENCES
        if more == 1 and _MORE.fullmatch(differences[-1]):
            more = 0  # the differences of another mismatch, capped already
        differences = [
            escaped(hide(line)) for line in differences[: len(differences) - max(more, 0)]
        ]
        if more > 0:
            differences.append(f"... and {more} more differences")
        lines = "\n".join(f"  {line}" for line in differences)
        super().__init__(f"request {step + 1} does not match the cassette ({summary}):\n{lines}")
        self.step = step
        self.differences = differences


class CassetteUnplayed(CassetteError):
    """Some recorded steps were never reached."""

    def __init__(self, steps: list[tuple[int, str]]) -> None:
        named = ", ".join(f"{number + 1} ({kind})" for number, kind in steps)
        super().__init__(f"the cassette's steps {named} were never reached")
        self.steps = steps


class Replayer:
    """Plays a cassette's interactions in order, for any number of connections.

    ``profile`` says how requests match (default: the cassette's own);
    ``secrets`` are never quoted in a :class:`CassetteMismatch` (see
    :func:`hiding`): the values a recording redacted may come back in what
    a client sends, and a mismatch's text goes to a terminal, a log, a
    client's 409.
    """

    def __init__(
        self, cassette: Cassette, profile: Profile | None = None, *, secrets: Iterable[str] = ()
    ) -> None:
        self.cassette = cassette
        self.profile = profile if profile is not None else profile_named(cassette.profile)
        self.secrets = tuple(secrets)
        self._hide = hiding(self.secrets)
        self._next = 0
        self._bindings: dict[str, str] = {}
        #: The step (from 0) the last request that matched played; None
        #: before any.
        self.last_step: int | None = None

    @property
    def played(self) -> int:
        """How many steps were played."""
        return self._next

    def connection(self) -> ReplayConnection:
        """The server side of one new connection."""
        return ReplayConnection(self)

    def new_client(self) -> None:
        """The steps from here on are another client's: the values it makes
        up itself (its login ``fingerprint``) bind afresh.

        A cassette that several clients recorded (tests sharing it, the
        recording proxy's clients) has each client's login, each redacted on
        its own: two fingerprints the same placeholder stands for, where a
        client replaying them both makes two of its own."""
        self._bindings = {}

    def unplayed(self) -> list[tuple[int, str]]:
        """(step, kind) of every step not played yet."""
        items = self.cassette.interactions
        return [(n, items[n].kind) for n in range(self._next, len(items))]

    def begun_steps(self) -> list[int]:
        """The steps a replay owes once begun: every one (a cassette plays
        whole, in order).  A replayer that plays parts of a cassette (the
        transports' episodes) owes only the parts it began."""
        return list(range(len(self.cassette.interactions)))

    def assert_played(self) -> None:
        """Raise :class:`CassetteUnplayed` if any step was never reached."""
        missing = self.unplayed()
        if missing:
            raise CassetteUnplayed(missing)

    def match(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> Interaction:
        """The next step, if this request is it; else :class:`CassetteMismatch`."""
        return self._match(method, target, headers, body, None)

    def _match(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        head: bytes | None,
    ) -> Interaction:
        # ``head``: the bytes of the request's head, read the plain way; the
        # step remembers them when the head matches (see match_known).
        step = self._next
        path = target.split("?", 1)[0]
        if step >= len(self.cassette.interactions):
            raise CassetteMismatch(
                step, f"{method} {path}", ["the cassette has no more steps"], secrets=self.secrets
            )
        item = self.cassette.interactions[step]
        recorded = item.request
        profile = self.profile
        differences = _head_differences(recorded, method, target, headers, profile, hide=self._hide)
        if head is not None and not differences:
            known = recorded._known_heads
            if len(known) < MAX_KNOWN_HEADS:
                known[head] = (profile, len(body), f"{method} {path}")
        return self._take(step, item, body, differences, f"{method} {path}")

    def match_known(self, data: bytes) -> Interaction | None:
        """The next step, if ``data`` is one whole request whose head already
        matched that step (in this replay or an earlier one of the cassette)
        and whose body matches it; :class:`CassetteMismatch` if its body does
        not.  None when the head is not known: the caller reads the request
        and calls :meth:`match`, which compares it in full.

        A head is the same bytes, so the same method, target and headers, and
        they match the step as they did before: only the body (with its
        bindings) is compared again.
        """
        items = self.cassette.interactions
        step = self._next
        end = data.find(b"\r\n\r\n") + 4
        if step >= len(items) or end < 4:
            return None
        item = items[step]
        known = item.request._known_heads.get(data[:end])
        if known is None or known[0] is not self.profile or len(data) != end + known[1]:
            return None
        return self._take(step, item, data[end:], [], known[2])

    def _take(
        self, step: int, item: Interaction, body: bytes, differences: list[str], sent: str
    ) -> Interaction:
        # The body's differences after the head's; the step is played, and
        # its bindings kept, only when there are none.
        bindings = dict(self._bindings)
        differences += _body_differences(
            item.request, body, bindings, self.profile, hide=self._hide
        )
        if differences:
            raise CassetteMismatch(
                step, f"{item.kind} expected, {sent} sent", differences, secrets=self.secrets
            )
        self._bindings = bindings
        self._next += 1
        self.last_step = step
        return item


def _head_differences(
    recorded: RecordedRequest,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    profile: Profile,
    *,
    hide: Callable[[str], str],
) -> list[str]:
    # Values are scrubbed (``hide``) before excerpt cuts them; names and the
    # rest of each line are scrubbed by CassetteMismatch, before its cut.
    out: list[str] = []
    if method != recorded.method:
        out.append(f"method: recorded {recorded.method}, sent {method}")
    # The recorded target's parts are read once per cassette; the same
    # target has the same path and query, with nothing to compare.
    if target != recorded.target:
        old_path, old_query = recorded._target_parts
        new = urlsplit(target)
        # A recorded path may hold a placeholder (a key the API takes as a
        # path segment, redacted): it matches as a value does.
        if old_path != new.path and not _fits(old_path, new.path, path=True):
            out.append(f"path: recorded {hide(old_path)!r}, sent {hide(new.path)!r}")
        new_query = parse_qs(new.query)
        for key in sorted(set(old_query) | set(new_query)):
            before_values, after_values = old_query.get(key), new_query.get(key)
            if not _same(before_values, after_values):
                out.append(
                    f"query {key}: recorded {_hidden(before_values, hide)!r}, "
                    f"sent {_hidden(after_values, hide)!r}"
                )
    if profile.match_headers:
        old_headers = recorded._header_map
        new_headers = header_map(headers)
        ignored_headers = profile.ignored_headers
        for name in sorted(set(old_headers) | set(new_headers)):
            if name in ignored_headers:
                continue
            before, after = old_headers.get(name), new_headers.get(name)
            # (Equal values are the same: _same's first answer, without its call.)
            if before != after and not _same(before, after):
                if before is None:
                    out.append(f"header {name}: not recorded, sent {excerpt(hide(after or ''))}")
                elif after is None:
                    out.append(f"header {name}: recorded {excerpt(hide(before))}, not sent")
                else:
                    out.append(
                        f"header {name}: recorded {excerpt(hide(before))}, "
                        f"sent {excerpt(hide(after))}"
                    )
    return out


def _body_differences(
    recorded: RecordedRequest,
    body: bytes,
    bindings: dict[str, str],
    profile: Profile,
    *,
    hide: Callable[[str], str],
) -> list[str]:
    out: list[str] = []
    old_body, new_body = recorded.json(), _json(body)
    if isinstance(old_body, dict) and isinstance(new_body, dict):
        for key in sorted(set(old_body) | set(new_body)):
            if key in profile.ignored_fields:
                continue
            before, after = old_body.get(key, _MISSING), new_body.get(key, _MISSING)
            if key in profile.bound_fields and isinstance(before, str) and isinstance(after, str):
                bound = bindings.setdefault(before, after)
                if bound != after:
                    out.append(f"body.{key}: bound to an earlier value, sent another")
                continue
            # Equal strings and numbers are the same, as _same would say (not
            # containers: their == takes an element for equal to itself, and
            # _same does not, for NaN).
            if before == after and type(before) in _SCALARS:
                continue
            if not _same(before, after, profile.ignored_fields):
                out.append(f"body.{key}: recorded {_show(before, hide)}, sent {_show(after, hide)}")
    elif recorded.body != body and not _fits(
        recorded.body.decode("latin-1"), body.decode("latin-1")
    ):
        # (Not JSON, a form say: a placeholder in it matches as in a value;
        # latin-1 keeps every byte one character.)
        out.append(
            f"body: recorded {_show_bytes(recorded.body, hide)}, sent {_show_bytes(body, hide)}"
        )
    return out


_SCALARS = frozenset({str, int, bool, type(None)})

_MISSING = object()


def _same(recorded: object, sent: object, ignored: frozenset[str] = frozenset()) -> bool:
    """Equal, or equal but for the redaction placeholders in ``recorded``
    (strings, or lists of them as query values are) and, inside JSON
    objects, the ``ignored`` fields."""
    if recorded == sent and not ignored:
        return True
    if isinstance(recorded, str) and isinstance(sent, str):
        return recorded == sent or _fits(recorded, sent)
    if isinstance(recorded, list) and isinstance(sent, list) and len(recorded) == len(sent):
        return all(_same(a, b, ignored) for a, b in zip(recorded, sent, strict=True))
    if isinstance(recorded, dict) and isinstance(sent, dict):
        keys = (set(recorded) | set(sent)) - ignored
        return all(_same(recorded.get(k, _MISSING), sent.get(k, _MISSING), ignored) for k in keys)
    return recorded == sent


def _fits(recorded: str, sent: str, *, path: bool = False) -> bool:
    # Each placeholder stands for some text: the literal pieces around them
    # must appear in order, the first at the start and the last at the end
    # (leftmost matching is exact for patterns whose only wildcard is "any").
    # A sent value holding placeholders itself came from the replay (a
    # token handed back): it must be the recorded one exactly.
    # In a path, a placeholder is (part of) a segment: some text, and no "/"
    # (a "/" in a secret is escaped there), else /bot<key>/getMe matched
    # /bot/getMe (no key) and /bot/admin/x/getMe.  Equal counts of "/" say
    # none is in a placeholder's text, whichever way the pieces fall.
    pieces = PLACEHOLDER.split(recorded)
    if len(pieces) == 1 or PLACEHOLDER.search(sent):
        return False
    if path and sent.count("/") != recorded.count("/"):
        return False
    least = 1 if path else 0  # (the least text a placeholder stands for)
    first, *middle, last = pieces
    if not sent.startswith(first):
        return False
    at = len(first)
    for piece in middle:
        found = sent.find(piece, at + least, len(sent) - len(last))
        if found < 0:
            return False
        at = found + len(piece)
    return sent.endswith(last) and at + least <= len(sent) - len(last)


def _show(value: Any, hide: Callable[[str], str]) -> str:
    if value is _MISSING:
        return "nothing"
    return excerpt(hide(json.dumps(value, ensure_ascii=False)))


def _show_bytes(data: bytes, hide: Callable[[str], str]) -> str:
    return excerpt(hide(data.decode("utf-8", "replace")))


def _hidden(values: list[str] | None, hide: Callable[[str], str]) -> list[str] | None:
    return None if values is None else [hide(value) for value in values]


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: a client's body nested deeper than Python's JSON
        # parser recurses is no JSON to match key by key; compared as bytes,
        # it is a mismatch (a 409), not a crashed connection.
        return None


def _compared(head: RequestHead) -> tuple[str, str, list[tuple[str, str]]]:
    """A read request head as :meth:`Replayer.match` takes it: method,
    target and headers as text."""
    return (
        head.method.decode("ascii"),
        head.target.decode("ascii"),
        [(n.decode("latin-1"), v.decode("latin-1")) for n, v in head.headers],
    )


class ReplayConnection:
    """One connection's server side: requests in, recorded bytes out."""

    def __init__(self, replayer: Replayer) -> None:
        self._replayer = replayer
        self._requests = RequestReader(MAX_REPLAY_REQUEST)
        # Known heads are the core replayer's: one that matches its own way
        # (an override of match) is asked every request.
        self._known = type(replayer).match is Replayer.match
        self._queue: deque[RecordedChunk | EndOfRecording] = deque()
        #: The step being answered and when its request was recorded.
        self.current: Interaction | None = None

    def receive(self, data: bytes) -> None:
        """Bytes the client wrote; a complete request queues its response."""
        reader = self._requests
        if reader.fresh and self._known:
            # The usual write: one whole request, its head the one the client
            # sent for this step in the last replay (read and matched once).
            replayer = self._replayer
            item = replayer.match_known(data)
            if item is None:
                request = reader.whole(data)
                if request is not None:
                    body = request.body
                    item = replayer._match(
                        *_compared(request.head), body, data[: len(data) - len(body)]
                    )
            if item is not None:
                self._answer(item)
                return
        try:
            requests = self._requests.feed(data)
        except InvalidHTTP as exc:
            raise CassetteError(f"the client sent invalid HTTP during replay: {exc}") from None
        for head, body, _ in requests:
            self._answer(self._replayer.match(*_compared(head), body))

    def _answer(self, item: Interaction) -> None:
        self.current = item
        self._queue.extend(item.response.chunks)
        if item.response.end != "complete":
            self._queue.append(EOF)

    def next_chunk(self) -> RecordedChunk | EndOfRecording | None:
        """The next recorded chunk, ``EOF`` where the server closed, or None
        when nothing is due until the client sends another request."""
        return self._queue.popleft() if self._queue else None

    def push_back(self, chunk: RecordedChunk) -> None:
        """Return the unread rest of a chunk to the front of the queue."""
        self._queue.appendleft(chunk)

    @property
    def at_eof(self) -> bool:
        """Whether the recorded connection's end is next (nothing left to read)."""
        return bool(self._queue) and self._queue[0] is EOF
