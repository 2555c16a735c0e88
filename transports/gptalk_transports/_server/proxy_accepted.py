"""The recording proxy's side of an accepted client connection on asyncio's
own listener (see proxy_listener.serve_on_asyncio): a protocol that hands itself
over once its transport is made, and can take the client's bytes as they
come (see proxy._proxy_one's forward_now)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .._backends.asyncio import _Protocol

__all__ = ["Accepted"]


class Accepted(_Protocol):
    """asyncio's protocol of an accepted client connection: hands itself over
    once its transport is made."""

    def __init__(self, loop: asyncio.AbstractEventLoop, spawn: Callable[[Accepted], None]) -> None:
        super().__init__(loop)
        self._spawn = spawn
        #: Takes the client's bytes as they come, where it can (True), while
        #: set: see forward_now.
        self.fast: Callable[[bytes], bool] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._spawn(self)

    def eof_received(self) -> bool:
        # A client that half-closed after its last request still reads the
        # answer: the transport stays open for writing (True), and the task,
        # which reads the end, closes it once the answer went out.
        super().eof_received()
        return True

    def data_received(self, data: bytes) -> None:
        fast = self.fast
        # Bytes already waiting for the task go first: then these wait too.
        if fast is None or self.chunks or not fast(data):
            super().data_received(data)
