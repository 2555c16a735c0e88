"""When to try a chat again: one policy, used by the async and blocking clients.

Pure decisions, no sleeping: the client asks :meth:`RetryPolicy.decide` what
to do with an error and sleeps itself.
"""

from __future__ import annotations

import math
import random
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import NamedTuple

from gptalk_proto import (
    AuthExpired,
    AuthInvalid,
    GPTalkError,
    HTTPStatusError,
    QuotaExhausted,
    StreamInterrupted,
)

from ._config import ProxyURL
from ._exceptions import ConnectError, ProxyError

__all__ = ["MAX_RETRY_AFTER", "RetryPolicy", "RetryState", "retry_after_seconds", "translate"]

_AUTH = (QuotaExhausted, AuthExpired, AuthInvalid)

#: The longest wait a ``Retry-After`` may impose, in seconds (the default of
#: :attr:`RetryPolicy.max_retry_after`): a longer one is cut to it, so a
#: hostile or broken server cannot park a client for hours.
MAX_RETRY_AFTER = 60.0

#: Digits a delay-seconds value may have before it counts as "huge" without
#: being converted (it is capped anyway; 4300+ digits would not even convert).
_MAX_DELAY_DIGITS = 12


def retry_after_seconds(value: str, now: float) -> float | None:
    """Seconds to wait per a ``Retry-After`` value, or None if it is none.

    RFC 9110 section 10.2.3: ``Retry-After = HTTP-date / delay-seconds``, and
    ``delay-seconds = 1*DIGIT``.  So a sign, a fraction, an exponent, ``nan``
    or ``inf`` make no delay (None: the caller's own backoff applies); an
    HTTP-date is read by :func:`email.utils.parsedate_to_datetime` and
    counted from ``now`` (unix seconds), a past date meaning "at once".  The
    result is finite and not negative; capping it is the caller's business.
    """
    value = value.strip()
    if value.isascii() and value.isdigit():
        if len(value) > _MAX_DELAY_DIGITS:
            return float(10**_MAX_DELAY_DIGITS)
        return float(int(value))
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if date.tzinfo is None:  # "-0000": RFC 5322's "no zone information"; HTTP means GMT
        date = date.replace(tzinfo=timezone.utc)
    try:
        seconds = date.timestamp() - now
    except (OverflowError, ValueError):
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def translate(error: GPTalkError, proxy: ProxyURL | None) -> GPTalkError:
    """What an error means for this client.

    Only a proxy answers 407 (RFC 9110 section 15.5.8): without a tunnel (an
    HTTP proxy in front of a plain-HTTP service) it arrives as the answer to a
    GPTalk request, and is the proxy's refusal, not the service's.
    """
    if proxy is not None and isinstance(error, HTTPStatusError) and error.status == 407:
        return ProxyError(f"the proxy {proxy} refused the credentials (407)")
    return error


class RetryState:
    """What one call has been through so far."""

    __slots__ = ("attempts", "auth_failures", "retries", "text_yielded")

    def __init__(self) -> None:
        self.attempts = 0
        #: Retries made (visible to callers as ``stream.retries``).
        self.retries = 0
        #: Consecutive refusals of the login token.
        self.auth_failures = 0
        self.text_yielded = False


class RetryPolicy(NamedTuple):
    """Which failures are worth another attempt, and how long to wait.

    * Nothing is retried once reply text was yielded: a broken stream then
      raises :class:`~gptalk_proto.StreamInterrupted` carrying the text so far.
    * Quota and token refusals: a new login cures them, at once (no backoff).
      The same refusal twice in a row raises :class:`~gptalk_proto.AuthInvalid`.
    * HTTP 5xx and 429, connect failures, and a stream that broke before any
      text: up to ``retries`` more attempts, after a capped, jittered
      exponential backoff (``backoff * 2**n``, at most ``max_backoff``, times a
      random factor in [0.5, 1]).
    * A 429 or 503 with a valid ``Retry-After`` (seconds or an HTTP date)
      waits what it asks instead, at most ``max_retry_after`` seconds;
      ``max_retry_after=0`` ignores it.  The clients never wait past the
      total timeout: a wait that would end after it raises the error at once.
    * Anything else (a bad request, a protocol violation, a timeout, a proxy
      or TLS failure) is raised at once.
    """

    retries: int = 3
    backoff: float = 0.25
    max_backoff: float = 4.0
    max_retry_after: float = MAX_RETRY_AFTER

    def decide(
        self, error: GPTalkError, state: RetryState, rng: random.Random, now: float = 0.0
    ) -> float:
        """Seconds to wait before the next attempt; raises when not to retry.

        ``now`` is the unix time, for a ``Retry-After`` given as a date.
        """
        if state.text_yielded:
            raise error
        if isinstance(error, _AUTH):
            state.auth_failures += 1
            if state.auth_failures >= 2:
                raise AuthInvalid(
                    error.code, f"the service refused a fresh login token too: {error.msg}"
                ) from error
            state.retries += 1
            return 0.0
        state.auth_failures = 0
        retryable = (
            isinstance(error, HTTPStatusError) and (error.status >= 500 or error.status == 429)
        ) or isinstance(error, (ConnectError, StreamInterrupted))
        if not retryable or state.retries >= self.retries:
            raise error
        state.retries += 1
        if isinstance(error, HTTPStatusError) and error.retry_after is not None:
            asked = retry_after_seconds(error.retry_after, now)
            if asked is not None:
                return min(asked, max(0.0, self.max_retry_after))
        delay: float = min(self.max_backoff, self.backoff * 2 ** (state.retries - 1))
        return delay * (0.5 + rng.random() / 2)
