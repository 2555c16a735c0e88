"""Login credentials, shared by any number of chats.

The original client kept the token and its use count on the provider class, so
concurrent chats raced on them.  Here they live in one object that many chats
share, and the service's rule lives with them: a token serves at most
``max_uses`` text requests and is never used past its expiry (less a safety
margin, since clocks differ and a request takes time to arrive).

The object itself does no locking: a single-threaded event loop needs none,
because :meth:`acquire` is one synchronous step; threaded drivers serialise
calls with their own lock.
"""

from __future__ import annotations

import math

from ._errors import LocalProtocolError

__all__ = ["DEFAULT_EXPIRY_MARGIN", "DEFAULT_MAX_USES", "Credentials"]

#: Text requests one login token serves (the service's rule).
DEFAULT_MAX_USES = 5

#: Seconds before ``expires_at`` from which a token counts as expired.
DEFAULT_EXPIRY_MARGIN = 30.0


class Credentials:
    """A login token with its expiry and use count.

    >>> creds = Credentials()
    >>> creds.usable(now=1000.0)
    False
    >>> creds.store("t0k3n", expires_at=2000.0)
    >>> creds.acquire(now=1000.0)
    't0k3n'
    >>> creds.uses
    1
    """

    __slots__ = ("_token", "expires_at", "generation", "logins", "margin", "max_uses", "uses")

    def __init__(
        self,
        *,
        max_uses: int = DEFAULT_MAX_USES,
        margin: float = DEFAULT_EXPIRY_MARGIN,
    ) -> None:
        if max_uses < 1:
            raise LocalProtocolError("max_uses must be at least 1")
        if margin < 0:
            raise LocalProtocolError("margin must not be negative")
        self.max_uses = max_uses
        self.margin = margin
        self._token: str | None = None
        self.expires_at = 0.0
        self.uses = 0
        #: Bumped by every :meth:`store`; lets a driver tell whether a login
        #: happened while it waited (single-flight logins).
        self.generation = 0
        #: How many logins were stored over this object's life.
        self.logins = 0

    @property
    def token(self) -> str | None:
        """The current token, or ``None``.  Not shown by ``repr``."""
        return self._token

    def usable(self, now: float) -> bool:
        """Whether a text request may use the token at time ``now``."""
        return (
            self._token is not None
            and self.uses < self.max_uses
            and now < self.expires_at - self.margin
        )

    def acquire(self, now: float) -> str:
        """Take one use of the token.  Raises if it is not :meth:`usable`."""
        if not self.usable(now):
            raise LocalProtocolError("the credentials are not usable: log in first")
        self.uses += 1
        assert self._token is not None
        return self._token

    def acquire_fresh(self) -> str:
        """Take one use of the token a login just stored, whatever the clock says.

        The chat that paid for a login uses its token even if the service's
        clock and ours disagree about the expiry; otherwise a skewed clock would
        make every chat log in forever.
        """
        if self._token is None or self.uses >= self.max_uses:
            raise LocalProtocolError("no freshly stored token to take")
        self.uses += 1
        return self._token

    def store(self, token: str, expires_at: float) -> None:
        """Keep a fresh token from a login; its use count starts at zero."""
        if not isinstance(token, str) or not token:
            raise LocalProtocolError("a token must be a non-empty str")
        try:
            expires = float(expires_at)
        except (TypeError, ValueError, OverflowError):
            expires = math.nan
        if isinstance(expires_at, bool) or math.isnan(expires):
            raise LocalProtocolError("expires_at must be a number of unix seconds")
        self._token = token
        self.expires_at = expires
        self.uses = 0
        self.generation += 1
        self.logins += 1

    def invalidate(self, token: str | None = None) -> None:
        """Forget the token (the service refused it), so the next chat logs in.

        With ``token`` given, only that token is forgotten: a chat that failed
        on an old token must not throw away a newer one another chat stored.
        """
        if token is None or token == self._token:
            self._token = None
            self.uses = 0

    def __repr__(self) -> str:
        state = "none" if self._token is None else "<redacted>"
        return (
            f"Credentials(token={state}, uses={self.uses}/{self.max_uses}, "
            f"expires_at={self.expires_at})"
        )
