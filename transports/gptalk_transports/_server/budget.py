"""The server-wide budget on bytes held in partial requests.

Each connection may hold one request while it arrives, up to the core's
per-request caps (a 2 MiB head and as much body at the replay server and the
recording proxy; 16 KiB and 1 MiB at the reference server), and a server
serves up to ``DEFAULT_MAX_CONNECTIONS`` (4096) connections: without a bound
across connections, one client holding every slot with a request it never
finishes makes the server hold 8 GiB or more.  :class:`PartialBudget` is
that bound, one per server, shared by its connections.

What counts
    A connection's count is the bytes read since its core last held nothing
    (no request begun); a read that completes a request and begins the next
    counts whole for the next.  An upper bound on what the core holds, then,
    kept without asking it for sizes; a request that arrives whole in one
    read (every request of a well-behaved client, nearly) never counts.

What happens when it is exhausted
    A read that takes the total past the budget sheds connections, the one
    holding the most first, until the total is within it again: each gets a
    503 (``retry-after: 1``) where no response of it has begun, and is
    closed.  Shedding the largest holder first keeps small requests safe: the
    largest holder holds at least ``budget / connections held``, so a
    connection holding less than ``budget / max_connections`` (32 KiB with
    the defaults) is shed only when every one holds as little (and a request
    that arrives whole is never shed).  Refusing new reads instead, or
    pausing them until the budget frees, would stall the well-behaved clients
    behind the hostile ones for as long as the request deadlines give those.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["DEFAULT_MAX_PARTIAL_BYTES", "SHED_RESPONSE", "PartialBudget", "PartialHold"]

#: Bytes a server holds in partial requests, across all its connections, at
#: most (see the module's docstring).  128 MiB: 64 requests at the replay
#: server's 2 MiB cap, or a few thousand clients each with a request cut
#: across reads (a few KiB), while a client holding every connection slot
#: cannot make the server hold more than this of them.
DEFAULT_MAX_PARTIAL_BYTES = 128 * 1024 * 1024

#: What a shed connection of the replay server or the recording proxy is
#: told before it is closed (the reference server says it in its own
#: envelope): RFC 9110 section 15.6.4, "temporarily overloaded".
_SHED_BODY = b'{"code": 503, "msg": "server busy with partial requests: try again"}'
SHED_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"retry-after: 1\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
    % (len(_SHED_BODY), _SHED_BODY)
)


class _Counts(Protocol):
    """Where the budget counts (the server's ``ServerStats``)."""

    shed: int
    partial_bytes: int


def _nothing() -> None:
    pass


class PartialHold:
    """One connection's share of a :class:`PartialBudget`.

    ``evict`` stops the connection from elsewhere (another connection's
    read shed it): the connection sets it to cancel the read it waits in
    (its count is of bytes the core holds while it waits for the rest; a
    connection that holds some while it answers is cancelled at its next
    read), and, seeing :attr:`shed`, answers 503 where it can and closes.
    A scope per read, not one around the connection: a scope nesting the
    reads' and writes' own scopes cost about 4,000 instructions a request
    at the replay server (callgrind, 100 chats of three requests).
    """

    __slots__ = ("_budget", "evict", "held", "shed")

    def __init__(self, budget: PartialBudget, evict: Callable[[], None] = _nothing) -> None:
        self._budget = budget
        self.evict = evict
        #: Bytes of partial requests this connection holds, as counted.
        self.held = 0
        #: True once shed: the connection must end.
        self.shed = False

    def after_read(self, size: int, *, answered: bool, partial: bool) -> bool:
        """Count a read of ``size`` bytes the core was just given.

        ``answered``: it completed a request; ``partial``: the core now
        holds part of one.  False if this connection was shed for it (the
        caller answers 503 and closes).
        """
        if self.shed:
            return False  # shed as this read came in: counted no more
        if not partial:
            if self.held:
                self._budget._set(self, 0)
            return True
        return self._budget._set(self, size if answered else self.held + size)

    def release(self) -> None:
        """This connection holds nothing now (its request is complete, or it ended)."""
        if self.held:
            self._budget._set(self, 0)


class PartialBudget:
    """The bytes a server's connections hold in partial requests, within
    ``limit`` (see the module's docstring); counted in ``stats``."""

    __slots__ = ("_holders", "limit", "stats")

    def __init__(self, limit: int, stats: _Counts) -> None:
        self.limit = limit
        self.stats = stats
        # The connections holding bytes now: at most the server's
        # connection cap, each once.
        self._holders: set[PartialHold] = set()

    def hold(self, evict: Callable[[], None] = _nothing) -> PartialHold:
        """A new connection's share; ``evict`` stops it (see :class:`PartialHold`)."""
        return PartialHold(self, evict)

    def _set(self, hold: PartialHold, held: int) -> bool:
        stats = self.stats
        stats.partial_bytes += held - hold.held
        hold.held = held
        if held:
            self._holders.add(hold)
        else:
            self._holders.discard(hold)
        while stats.partial_bytes > self.limit:
            # The largest holder first (a scan: only past the budget, and
            # of at most the connection cap's holders).
            largest = max(self._holders, key=_held)
            stats.partial_bytes -= largest.held
            largest.held = 0
            largest.shed = True
            self._holders.discard(largest)
            stats.shed += 1
            if largest is not hold:
                largest.evict()
        return not hold.shed


def _held(hold: PartialHold) -> int:
    return hold.held
