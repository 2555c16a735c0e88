"""The default backend: whatever suits the event loop that is running.

A client is often built before any loop runs (in a fixture, at import), so
the choice is made on each call, from the loop the call runs in: native
asyncio on asyncio, anyio (which runs on trio too) everywhere else.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager

import sniffio

from gptalk_proto import LocalProtocolError

from .anyio import AnyioBackend
from .asyncio import AsyncioBackend
from .base import AsyncBackend, AsyncByteStream, AsyncLock
from .trio import TrioBackend

__all__ = ["BACKENDS", "AutoBackend", "concrete", "make_async_backend"]

BACKENDS = ("auto", "asyncio", "anyio", "trio")

_ASYNCIO = AsyncioBackend()
_ANYIO = AnyioBackend()


def _current() -> AsyncBackend:
    # sniffio's answer, without its probe of asyncio when neither of its
    # overrides is set (trio sets one) and curio is not loaded: the answer is
    # then "asyncio" or none, the asyncio backend either way.  The probe asks
    # asyncio for its current task, which on Python 3.11 costs a getpid()
    # system call, and this runs on every chat.
    if (
        sniffio.thread_local.name is None
        and sniffio.current_async_library_cvar.get() is None
        and "curio" not in sys.modules
    ):
        return _ASYNCIO
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = "asyncio"
    return _ASYNCIO if library == "asyncio" else _ANYIO


def concrete(backend: AsyncBackend) -> AsyncBackend:
    """The backend that serves the running loop: ``backend`` itself, or, for
    the automatic one, the one it picks (resolved once for a whole chat)."""
    return _current() if isinstance(backend, AutoBackend) else backend


class AutoBackend:
    """Delegates each call to the backend of the running loop."""

    name = "auto"

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None
    ) -> AsyncByteStream:
        return await _current().connect_tcp(host, port, timeout)

    async def resolve(self, host: str, port: int) -> str:
        return await _current().resolve(host, port)

    async def sleep(self, seconds: float) -> None:
        await _current().sleep(seconds)

    def fail_after(self, seconds: float | None) -> AbstractContextManager[object]:
        return _current().fail_after(seconds)

    def shield(self) -> AbstractContextManager[object]:
        return _current().shield()

    def current_time(self) -> float:
        return _current().current_time()

    def create_lock(self) -> AsyncLock:
        return _current().create_lock()


def make_async_backend(backend: str | AsyncBackend) -> AsyncBackend:
    """A backend by name.

    * ``"auto"`` (the default): native asyncio on asyncio, anyio elsewhere;
    * ``"asyncio"``: asyncio's own transports (the fast path on asyncio);
    * ``"anyio"``: anyio's streams, on asyncio or trio alike;
    * ``"trio"``: trio's own streams.
    """
    if backend == "auto":
        return AutoBackend()
    if backend == "asyncio":
        return AsyncioBackend()
    if backend == "anyio":
        return AnyioBackend()
    if backend == "trio":
        return TrioBackend()
    if isinstance(backend, str):
        raise LocalProtocolError(
            f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}"
        )
    return backend
