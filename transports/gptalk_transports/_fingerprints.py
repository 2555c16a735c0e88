"""Login fingerprints for the clients' chats, drawn from the OS in batches."""

from __future__ import annotations

import os

__all__ = ["FINGERPRINT_BATCH", "Fingerprints"]

#: Fingerprints drawn from the OS in one ``os.urandom`` call, and so the cap
#: on those kept unused (32 hex characters each).  Every chat is handed one
#: (the core wants it up front), though only a chat that logs in sends it:
#: one call per chat was a system call on every chat's way to its first
#: request.
FINGERPRINT_BATCH = 64


class Fingerprints:
    """Hands out fresh fingerprints: 16 random bytes each, in hex, as
    ``secrets.token_hex(16)`` makes them (both read ``os.urandom``).

    Safe to share among threads (the blocking client is): ``list.pop`` is
    atomic, so no fingerprint is handed out twice; two threads that find the
    batch empty at once each draw one, and the first one's is dropped.
    """

    __slots__ = ("_batch",)

    def __init__(self) -> None:
        self._batch: list[str] = []

    def take(self) -> str:
        """A fingerprint no one else was given."""
        try:
            return self._batch.pop()
        except IndexError:
            pass
        drawn = os.urandom(16 * FINGERPRINT_BATCH).hex()
        batch = [drawn[start : start + 32] for start in range(0, len(drawn), 32)]
        fingerprint = batch.pop()
        self._batch = batch
        return fingerprint
