"""When to try a chat again: one policy, used by the async and blocking clients.

Pure decisions, no sleeping: the client asks :meth:`RetryPolicy.decide` what
to do with an error and sleeps itself.
"""

from __future__ import annotations

import random
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

__all__ = ["RetryPolicy", "RetryState", "translate"]

_AUTH = (QuotaExhausted, AuthExpired, AuthInvalid)


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
    * Anything else (a bad request, a protocol violation, a timeout, a proxy
      or TLS failure) is raised at once.
    """

    retries: int = 3
    backoff: float = 0.25
    max_backoff: float = 4.0

    def decide(self, error: GPTalkError, state: RetryState, rng: random.Random) -> float:
        """Seconds to wait before the next attempt; raises when not to retry."""
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
        delay: float = min(self.max_backoff, self.backoff * 2**state.retries)
        state.retries += 1
        return delay * (0.5 + rng.random() / 2)
