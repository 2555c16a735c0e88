"""gptalk_transports: IO for the gptalk_proto core.

Transports (anyio for asyncio and trio, trio-native, blocking), the clients,
the g4f-compatible ``GPTalk`` provider, the reference server, a bounded load
runner and the ``gptalk`` command.
"""

from ._async_client import AsyncChatStream, AsyncClient
from ._config import DEFAULT_URL, Origin, ProxyURL, Timeout, make_ssl_context
from ._exceptions import (
    ConnectError,
    ConnectTimeout,
    DeadlineExceeded,
    InsecureTLSWarning,
    ProxyError,
    ReadError,
    ReadTimeout,
    TLSError,
    TLSVerificationError,
    TransportError,
    TransportTimeout,
    WriteError,
    WriteTimeout,
)
from ._g4f import GPTalk
from ._load import LoadReport, run_load
from ._retry import RetryPolicy
from ._sync_client import ChatStream, Client

__all__ = [
    "DEFAULT_URL",
    "AsyncChatStream",
    "AsyncClient",
    "ChatStream",
    "Client",
    "ConnectError",
    "ConnectTimeout",
    "DeadlineExceeded",
    "GPTalk",
    "InsecureTLSWarning",
    "LoadReport",
    "Origin",
    "ProxyError",
    "ProxyURL",
    "ReadError",
    "ReadTimeout",
    "RetryPolicy",
    "TLSError",
    "TLSVerificationError",
    "Timeout",
    "TransportError",
    "TransportTimeout",
    "WriteError",
    "WriteTimeout",
    "make_ssl_context",
    "run_load",
]
