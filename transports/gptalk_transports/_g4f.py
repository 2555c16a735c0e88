"""A g4f-compatible provider: ``GPTalk.create_async_generator``.

Existing g4f-style code keeps working::

    async for piece in GPTalk.create_async_generator("gpt-3.5-turbo", messages):
        print(piece, end="")

The original kept its token and use count as class attributes, mutated by
every concurrent call.  Here each event loop has one :class:`Credentials`
object per service URL, and the calls in flight with the same settings share
one :class:`AsyncClient` -- its connection pool and its login lock -- so 50
concurrent calls log in 10 times (5 chats per token), never overuse or
outlive a token, and never race on it.  The shared client is closed by the
last call that uses it; the credentials hold no resource and go with the loop.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections.abc import AsyncGenerator, Hashable
from typing import Any, ClassVar

import sniffio
import trio

from gptalk_proto import DEFAULT_MODEL, Credentials, LocalProtocolError

from ._async.client import AsyncClient
from ._config import DEFAULT_URL, Timeout
from ._progress import Messages

__all__ = ["GPTalk"]


def _running_loop() -> object:
    """The running event loop (asyncio) or run (trio), as a weak-referenceable key."""
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        raise LocalProtocolError(
            "GPTalk's calls run inside an asyncio or trio event loop"
        ) from None
    if library == "trio":
        return trio.lowlevel.current_trio_token()
    return asyncio.get_running_loop()


class _Shared:
    """An AsyncClient and the number of calls in flight on it."""

    __slots__ = ("client", "users")

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.users = 0


class GPTalk:
    """The GPTalk provider, as g4f knew it."""

    url: ClassVar[str] = DEFAULT_URL
    #: The live service is gone (it was marked not working in g4f, too);
    #: point ``base_url`` at a reference server to use this provider.
    working: ClassVar[bool] = False
    supports_gpt_35_turbo: ClassVar[bool] = True
    supports_stream: ClassVar[bool] = True
    default_model: ClassVar[str] = DEFAULT_MODEL

    # Per event loop (weakly: a finished loop takes its entries with it), the
    # credentials of each service URL.
    _credentials: ClassVar[weakref.WeakKeyDictionary[object, dict[str, Credentials]]] = (
        weakref.WeakKeyDictionary()
    )
    # The clients of the calls in flight, by loop and settings; an entry lives
    # from the first call that needs it to the end of the last one using it.
    _clients: ClassVar[dict[Hashable, _Shared]] = {}

    @classmethod
    def credentials_for(cls, base_url: str) -> Credentials:
        """The login state shared by every call to ``base_url`` on the running
        event loop (call it from inside the loop)."""
        per_url = cls._credentials.setdefault(_running_loop(), {})
        return per_url.setdefault(base_url.rstrip("/"), Credentials())

    @classmethod
    async def create_async_generator(
        cls,
        model: str,
        messages: Messages,
        proxy: str | None = None,
        **kwargs: Any,
    ) -> AsyncGenerator[str, None]:
        """Yield the reply's text pieces as they arrive.

        Args:
            model: the model name (``"gpt-3.5-turbo"`` when empty).
            messages: ``[{"role": ..., "content": ...}, ...]``.
            proxy: ``http://``, ``socks5://`` or ``socks5h://`` proxy URL.
            **kwargs: ``base_url`` (default: :attr:`url`), ``timeout``,
                ``verify``, ``backend``, ``retry``; other keyword arguments, which
                g4f passes to every provider, are accepted and ignored.

        Concurrent calls on one event loop with the same URL and settings share
        one client: its connections and its logins (one for every five chats).
        """
        base_url: str = (kwargs.get("base_url") or cls.url).rstrip("/")
        timeout: Timeout | float | None = kwargs.get("timeout", Timeout())
        verify: bool | str | ssl.SSLContext = kwargs.get("verify", True)
        options: dict[str, Any] = {}
        for name in ("backend", "retry"):
            if name in kwargs:
                options[name] = kwargs[name]
        key = (
            _running_loop(),
            base_url,
            proxy,
            timeout,
            verify,
            options.get("backend"),
            options.get("retry"),
        )
        shared = cls._clients.get(key)
        if shared is None:
            client = AsyncClient(
                base_url,
                proxy=proxy,
                timeout=timeout,
                verify=verify,
                credentials=cls.credentials_for(base_url),
                **options,
            )
            shared = cls._clients[key] = _Shared(client)
        shared.users += 1
        try:
            async with shared.client.stream(messages, model=model or cls.default_model) as deltas:
                async for piece in deltas:
                    yield piece
        finally:
            shared.users -= 1
            if shared.users == 0:
                # The last call out closes the client (aclose shields itself
                # from cancellation); a call that starts meanwhile makes a new one.
                if cls._clients.get(key) is shared:
                    del cls._clients[key]
                await shared.client.aclose()
