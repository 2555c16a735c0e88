"""A replay server's session: the tokens it hands out, and back.

Each session of a :class:`~._replay_server.ReplayServer` hands out tokens of
its own for the recorded token placeholders (see "Tokens" in
:mod:`._replay_server`), and turns a request's tokens back into the
placeholders before it is matched.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ._replay import Replayer

__all__ = ["ISSUED", "Session"]

# Placeholders of the tokens a server hands out (long and short forms).
TOKEN_PLACEHOLDER = re.compile(rb"<(?:login-token|stream-token)-\d+>\.*|<[ts]\d+>\.*")
# The tokens this server hands out: session and serial in hex, then a random
# part ("K" and hex, with entropy) and "_" padding.
ISSUED = re.compile(rb"gtR([0-9a-f]{1,12})T([0-9a-f]{1,8})(?:K[0-9a-f]*)?_*")


class Session:
    """One client's session: its tokens, and the replayer it plays (its own,
    or the cassette's one shared by every session: see ``ReplayServer``)."""

    __slots__ = ("attached", "cassette", "entropy", "issued", "number", "placeholders", "replayer")

    def __init__(
        self,
        number: int,
        cassette: int,
        replayer: Replayer,
        entropy: Callable[[int], bytes] | None = None,
    ) -> None:
        self.number = number
        self.entropy = entropy
        self.cassette = cassette
        self.replayer = replayer
        self.attached = 0  # connections whose last request was of this session
        self.issued: dict[bytes, bytes] = {}  # placeholder -> token handed out
        self.placeholders: dict[bytes, bytes] = {}  # token -> placeholder

    @property
    def finished(self) -> bool:
        return self.replayer.played >= len(self.replayer.cassette.interactions)

    def token(self, placeholder: bytes) -> bytes:
        """This session's token for ``placeholder``, of the same length."""
        token = self.issued.get(placeholder)
        if token is None:
            stem = b"gtR%xT%x" % (self.number, len(self.issued) + 1)
            if len(stem) > len(placeholder):
                # Too short a placeholder to be unique: hand it out as recorded.
                return placeholder
            room = len(placeholder) - len(stem)
            if self.entropy is not None and room >= 2:
                stem += b"K" + self.entropy(room // 2).hex()[: room - 1].encode()
            token = stem + b"_" * (len(placeholder) - len(stem))
            self.issued[placeholder] = token
            self.placeholders[token] = placeholder
        return token

    def recorded(self, data: bytes) -> bytes:
        """``data`` with this session's tokens turned back into placeholders."""
        return ISSUED.sub(lambda m: self.placeholders.get(m.group(0), m.group(0)), data)

    def handed_out(self, data: bytes) -> bytes:
        """``data`` with token placeholders turned into this session's tokens."""
        return TOKEN_PLACEHOLDER.sub(lambda m: self.token(m.group(0)), data)
