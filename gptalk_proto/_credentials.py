"""Login credentials, shared by any number of chats.

The original client kept the token and its use count on the provider class, so
concurrent chats raced on them.  Here they live in one object that many chats
share, and the service's rule lives with them: a token serves at most
``max_uses`` text requests and is never used past its expiry (less a safety
margin, since clocks differ and a request takes time to arrive).

Many chats at once need many tokens: the object holds several, each with its
own use count and expiry, and lets logins run in parallel -- one login per
``max_uses`` chats that wait for a token.  A chat that finds no token to use
either starts a login of its own or takes a *seat* on a login in flight: the
seat reserves one use of the token that login will store, so no token ever
serves more than ``max_uses`` text requests, whatever the order in which the
chats get to send.  :meth:`Credentials.claim` is that decision; a driver waits
(on the ``handle`` it gave the login) and calls it again when the login ends.

The object itself does no locking and no waiting: a single-threaded event loop
needs none, because every method is one synchronous step; threaded drivers
serialise the calls that change counts (:meth:`~Credentials.claim`,
:meth:`~Credentials.release`, and a chat's ``next_request``) with their own
lock.  :meth:`~Credentials.invalidate` only sets a flag, so a chat may call it
from wherever it learns that the service refused a token.
"""

from __future__ import annotations

import math
from typing import Final

from ._errors import LocalProtocolError
from ._util import _SentinelEnum

__all__ = [
    "DEFAULT_EXPIRY_MARGIN",
    "DEFAULT_MAX_PENDING_LOGINS",
    "DEFAULT_MAX_USES",
    "NEED_HANDLE",
    "Credentials",
    "NeedHandle",
    "Ticket",
]

#: Text requests one login token serves (the service's rule).
DEFAULT_MAX_USES = 5

#: Seconds before ``expires_at`` from which a token counts as expired.
DEFAULT_EXPIRY_MARGIN = 30.0

#: Logins in flight at once.  Each serves ``max_uses`` chats, so 32 serve a
#: burst of 160 chats in one round trip; past it, chats wait for a login to
#: end instead of starting one (a flood of logins is what a service throttles,
#: and each pending login is state held here).  It also caps the tokens kept
#: with spare uses nobody reserved: past it the oldest of them is forgotten
#: (its uses are lost, never over-used).
DEFAULT_MAX_PENDING_LOGINS = 32


class NeedHandle(_SentinelEnum):
    """The type of :data:`NEED_HANDLE`."""

    NEED_HANDLE = "NEED_HANDLE"


NEED_HANDLE: Final = NeedHandle.NEED_HANDLE
"""What :meth:`Credentials.claim` returns when the chat must log in but gave
no handle: call again with one that the other chats can wait on (a lock the
driver already holds, released when the login ends)."""


class _Token:
    """One stored token.  ``held``: uses reserved by seats not yet taken."""

    __slots__ = ("expires_at", "held", "refused", "token", "uses")

    def __init__(self, token: str, expires_at: float) -> None:
        self.token = token
        self.expires_at = expires_at
        self.uses = 0
        self.held = 0
        self.refused = False


class _Login:
    """A login in flight: the chat making it and the chats holding seats on it."""

    __slots__ = ("ended", "entry", "handle", "seats")

    def __init__(self, handle: object) -> None:
        self.handle = handle
        #: Chats counting on this login, the one making it included (at most max_uses).
        self.seats = 1
        #: The token it stored, once it ended well.
        self.entry: _Token | None = None
        self.ended = False


class Ticket:
    """One chat's claim on shared credentials (kept by the chat).

    It holds at most one of: a use of a token (``token``), the chat's own login
    in flight, or a seat on another chat's login.
    """

    __slots__ = ("login", "own", "token")

    def __init__(self) -> None:
        #: The token this chat took a use of.
        self.token: str | None = None
        #: The login this chat makes (``own``) or holds a seat on.
        self.login: _Login | None = None
        self.own = False

    @property
    def logging_in(self) -> bool:
        """Whether the chat's own login is in flight (others may wait on it)."""
        return self.own

    @property
    def waiting(self) -> bool:
        """Whether the chat holds a seat on a login not yet taken."""
        return self.login is not None and not self.own


class Credentials:
    """Login tokens with their expiry and use counts.

    >>> creds = Credentials()
    >>> creds.usable(now=1000.0)
    False
    >>> creds.store("t0k3n", expires_at=2000.0)
    >>> creds.acquire(now=1000.0)
    't0k3n'
    >>> creds.uses
    1

    ``token``, ``uses`` and ``expires_at`` describe the newest token.
    """

    __slots__ = ("_pending", "_tokens", "generation", "logins", "margin", "max_pending", "max_uses")

    def __init__(
        self,
        *,
        max_uses: int = DEFAULT_MAX_USES,
        margin: float = DEFAULT_EXPIRY_MARGIN,
        max_pending_logins: int = DEFAULT_MAX_PENDING_LOGINS,
    ) -> None:
        if max_uses < 1:
            raise LocalProtocolError("max_uses must be at least 1")
        if margin < 0:
            raise LocalProtocolError("margin must not be negative")
        if max_pending_logins < 1:
            raise LocalProtocolError("max_pending_logins must be at least 1")
        self.max_uses = max_uses
        self.margin = margin
        self.max_pending = max_pending_logins
        # Oldest first; never mutated in place except by appending, so that a
        # flag set by invalidate() from another thread lands on a live entry.
        self._tokens: list[_Token] = []
        self._pending: list[_Login] = []
        #: Bumped by every stored token.
        self.generation = 0
        #: How many logins were stored over this object's life.
        self.logins = 0

    # -- the newest token ----------------------------------------------------------

    @property
    def token(self) -> str | None:
        """The newest token, or ``None`` (refused).  Not shown by ``repr``."""
        if not self._tokens or self._tokens[-1].refused:
            return None
        return self._tokens[-1].token

    @property
    def uses(self) -> int:
        """Uses taken of the newest token."""
        return self._tokens[-1].uses if self._tokens else 0

    @property
    def expires_at(self) -> float:
        """The newest token's expiry (unix seconds; 0 with none)."""
        return self._tokens[-1].expires_at if self._tokens else 0.0

    @expires_at.setter
    def expires_at(self, value: float) -> None:
        if self._tokens:
            self._tokens[-1].expires_at = value

    @property
    def pending_logins(self) -> int:
        """Logins in flight that chats claimed."""
        return len(self._pending)

    @property
    def seated(self) -> int:
        """Chats holding seats on logins in flight (not counting the chats
        making those logins)."""
        return sum(login.seats - 1 for login in self._pending)

    # -- one use at a time -----------------------------------------------------------

    def _fresh(self, entry: _Token, now: float) -> bool:
        return not entry.refused and now < entry.expires_at - self.margin

    def _spare(self, now: float) -> _Token | None:
        """The oldest token with a use nobody holds (the first to expire)."""
        for entry in self._tokens:
            if entry.uses + entry.held < self.max_uses and self._fresh(entry, now):
                return entry
        return None

    def usable(self, now: float) -> bool:
        """Whether a text request may take a token's use at time ``now``."""
        return self._spare(now) is not None

    def acquire(self, now: float) -> str:
        """Take one use of a token.  Raises if none is :meth:`usable`."""
        entry = self._spare(now)
        if entry is None:
            raise LocalProtocolError("the credentials are not usable: log in first")
        entry.uses += 1
        return entry.token

    def acquire_fresh(self) -> str:
        """Take one use of the token a login just stored, whatever the clock says.

        The chat that paid for a login uses its token even if the service's
        clock and ours disagree about the expiry; otherwise a skewed clock would
        make every chat log in forever.
        """
        entry = self._tokens[-1] if self._tokens else None
        if entry is None or entry.refused or entry.uses + entry.held >= self.max_uses:
            raise LocalProtocolError("no freshly stored token to take")
        entry.uses += 1
        return entry.token

    def store(self, token: str, expires_at: float) -> None:
        """Keep a fresh token from a login; its use count starts at zero."""
        self._store(token, expires_at)

    def _store(self, token: str, expires_at: float) -> _Token:
        if not isinstance(token, str) or not token:
            raise LocalProtocolError("a token must be a non-empty str")
        try:
            expires = float(expires_at)
        except (TypeError, ValueError, OverflowError):
            expires = math.nan
        if isinstance(expires_at, bool) or math.isnan(expires):
            raise LocalProtocolError("expires_at must be a number of unix seconds")
        entry = _Token(token, expires)
        self._prune(None)
        self._tokens.append(entry)
        self.generation += 1
        self.logins += 1
        return entry

    def _prune(self, now: float | None) -> None:
        """Forget tokens no chat can use any more (expired by ``now``, if
        given), and spare ones past the cap.

        The newest is kept whatever it holds (``token`` and ``uses`` show it);
        a token with seats outstanding is kept until those chats come for it.
        """
        tokens = self._tokens
        if len(tokens) < 2:
            return
        keep = [
            t
            for t in tokens[:-1]
            if t.held
            or (
                not t.refused
                and t.uses < self.max_uses
                and (now is None or now < t.expires_at - self.margin)
            )
        ]
        spare = [t for t in keep if not t.held]
        if len(spare) >= self.max_pending:
            drop = {id(t) for t in spare[: len(spare) - self.max_pending + 1]}
            keep = [t for t in keep if id(t) not in drop]
        keep.append(tokens[-1])
        if len(keep) != len(tokens):
            self._tokens = keep

    def invalidate(self, token: str | None = None) -> None:
        """Forget a token (the service refused it), so no chat uses it again.

        With ``token`` given, only that token is forgotten: a chat that failed
        on an old token must not throw away a newer one another chat stored.
        Without, every token is.  (Only sets flags: safe from any thread.)
        """
        for entry in self._tokens:
            if token is None or entry.token == token:
                entry.refused = True

    # -- claims: parallel logins, one per max_uses waiting chats ---------------------

    def claim(self, ticket: Ticket, now: float, handle: object = None) -> object:
        """Decide how the chat holding ``ticket`` gets its token; one step.

        Returns ``None`` when the chat may send its first request now: it took
        a use of a token (``ticket.token``), or it logs in itself
        (``ticket.logging_in``), and ``handle`` is what other chats wait on
        until its login ends.  Returns :data:`NEED_HANDLE` when the chat must
        log in but gave no handle.  Otherwise returns the handle of another
        chat's login: wait until that login ends, then claim again (the chat
        holds a seat on it, or, with every login full and no room for one
        more, just waits for the oldest to end).
        """
        if ticket.token is not None or ticket.own:
            return None
        login = ticket.login
        if login is not None:
            if not login.ended:
                return login.handle  # woken early: keep waiting
            ticket.login = None
            entry = login.entry
            if entry is not None:
                entry.held -= 1
                if entry.uses < self.max_uses and self._fresh(entry, now):
                    entry.uses += 1
                    ticket.token = entry.token
                    return None
            # That login failed, or its token is no good now: claim afresh.
        self._prune(now)
        entry = self._spare(now)
        if entry is not None:
            entry.uses += 1
            ticket.token = entry.token
            return None
        for login in self._pending:
            if login.seats < self.max_uses:
                login.seats += 1
                ticket.login = login
                return login.handle
        if len(self._pending) >= self.max_pending:
            return self._pending[0].handle
        if handle is None:
            return NEED_HANDLE
        login = _Login(handle)
        self._pending.append(login)
        ticket.login = login
        ticket.own = True
        return None

    def logged_in(self, ticket: Ticket, token: str, expires_at: float, *, use: bool = True) -> str:
        """A login made by the chat holding ``ticket`` succeeded: store its
        token, reserve the uses of the chats seated on that login, and (with
        ``use``) take the chat's own use, whatever the clock says.

        Without ``use`` (the chat ended before its text request) the use goes
        to whoever comes next.
        """
        entry = self._store(token, expires_at)
        login = ticket.login
        if login is not None and ticket.own:
            entry.held = login.seats - 1
            self._end(login, entry)
            ticket.login = None
            ticket.own = False
        if use:
            entry.uses += 1
            ticket.token = token
        return token

    def release(self, ticket: Ticket) -> None:
        """The chat holding ``ticket`` ended: give back its seat, or end its
        own login in flight (failed or cancelled: the chats seated on it claim
        again, and one of them logs in).  A use already taken stays taken."""
        login = ticket.login
        if login is None:
            return
        ticket.login = None
        if ticket.own:
            ticket.own = False
            if not login.ended:
                self._end(login, None)
        elif login.ended:
            if login.entry is not None:
                login.entry.held -= 1
        else:
            login.seats -= 1

    def _end(self, login: _Login, entry: _Token | None) -> None:
        login.entry = entry
        login.ended = True
        self._pending.remove(login)

    def __repr__(self) -> str:
        state = "none" if self.token is None else "<redacted>"
        return (
            f"Credentials(token={state}, uses={self.uses}/{self.max_uses}, "
            f"expires_at={self.expires_at}, tokens={len(self._tokens)}, "
            f"pending_logins={len(self._pending)})"
        )
