"""gptalk_transports: IO for the gptalk_proto core.

Transports (anyio for asyncio and trio, trio-native, blocking), the clients,
the g4f-compatible ``GPTalk`` provider, the reference server, record and
replay (cassettes, sessions, the pytest plugin), a bounded load runner and the
``gptalk`` command.
"""

from types import FunctionType

from ._async.client import AsyncChatStream, AsyncClient
from ._async.recording import AsyncRecordingConnector
from ._async.replay import AsyncReplayConnector
from ._cassettes import Recording, ReplayTiming, load_cassette, save_cassette
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
from ._schema import cassette_schema
from ._server.proxy_run import ProxyRun, record_through_proxy, record_through_proxy_in_thread
from ._server.refserver import (
    ServerStats,
    make_service,
    serve,
    serve_in_background,
    serve_in_thread,
)
from ._server.replay import serve_cassettes, serve_cassettes_in_thread
from ._session import ChatResult, record_session, replay_session
from ._sync.client import ChatStream, Client
from ._sync.recording import SyncRecordingConnector
from ._sync.replay import SyncReplayConnector

__all__ = [
    "DEFAULT_URL",
    "AsyncChatStream",
    "AsyncClient",
    "AsyncRecordingConnector",
    "AsyncReplayConnector",
    "ChatResult",
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
    "ProxyRun",
    "ProxyURL",
    "ReadError",
    "ReadTimeout",
    "Recording",
    "ReplayTiming",
    "RetryPolicy",
    "ServerStats",
    "SyncRecordingConnector",
    "SyncReplayConnector",
    "TLSError",
    "TLSVerificationError",
    "Timeout",
    "TransportError",
    "TransportTimeout",
    "WriteError",
    "WriteTimeout",
    "cassette_schema",
    "load_cassette",
    "make_service",
    "make_ssl_context",
    "record_session",
    "record_through_proxy",
    "record_through_proxy_in_thread",
    "replay_session",
    "run_load",
    "save_cassette",
    "serve",
    "serve_cassettes",
    "serve_cassettes_in_thread",
    "serve_in_background",
    "serve_in_thread",
]

# Shown as gptalk_transports.X, not gptalk_transports._module.X (help(), the documentation).
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, (type, FunctionType)) and _obj.__module__.startswith(__name__ + "._"):
        _obj.__module__ = __name__
del _name, _obj
