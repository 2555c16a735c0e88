"""A g4f-compatible provider: ``GPTalk.create_async_generator``.

Existing g4f-style code keeps working::

    async for piece in GPTalk.create_async_generator("gpt-3.5-turbo", messages):
        print(piece, end="")

The original kept its token and use count as class attributes, mutated by
every concurrent call.  Here the class holds one :class:`Credentials` object
per service URL, and the 5-use and expiry rule is enforced inside it in one
synchronous step, so concurrent generators can share a token but can never
overuse or outlive it.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

from gptalk_proto import DEFAULT_MODEL, Credentials

from ._async_client import AsyncClient
from ._config import DEFAULT_URL, Timeout
from ._progress import Messages

__all__ = ["GPTalk"]


class GPTalk:
    """The GPTalk provider, as g4f knew it."""

    url: ClassVar[str] = DEFAULT_URL
    #: The live service is gone (it was marked not working in g4f, too);
    #: point ``base_url`` at a reference server to use this provider.
    working: ClassVar[bool] = False
    supports_gpt_35_turbo: ClassVar[bool] = True
    supports_stream: ClassVar[bool] = True
    default_model: ClassVar[str] = DEFAULT_MODEL

    _credentials: ClassVar[dict[str, Credentials]] = {}

    @classmethod
    def credentials_for(cls, base_url: str) -> Credentials:
        """The login state shared by every call to ``base_url``."""
        return cls._credentials.setdefault(base_url.rstrip("/"), Credentials())

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
        """
        base_url: str = kwargs.get("base_url") or cls.url
        timeout: Timeout | float | None = kwargs.get("timeout", Timeout())
        verify: bool | str | ssl.SSLContext = kwargs.get("verify", True)
        options: dict[str, Any] = {}
        for name in ("backend", "retry"):
            if name in kwargs:
                options[name] = kwargs[name]
        async with (
            AsyncClient(
                base_url,
                proxy=proxy,
                timeout=timeout,
                verify=verify,
                credentials=cls.credentials_for(base_url),
                **options,
            ) as client,
            client.stream(messages, model=model or cls.default_model) as deltas,
        ):
            async for piece in deltas:
                yield piece
