"""gptalk_proto: the GPTalk chat-streaming protocol, sans IO.

Bytes in, events out.  The core does no IO, reads no clock and draws no
randomness: time and entropy come in as arguments.

* :class:`SSEParser`, :func:`encode_event`: ``text/event-stream`` exact to the
  WHATWG HTML standard.
* :class:`Chat` (exchange level) and :class:`ClientConnection` (bytes level):
  one chat as a client state machine; :class:`Credentials` shared by chats.
* :class:`Service` and :class:`ServerConnection`: the server role, which the
  reference server runs.
"""

from ._chat import DEFAULT_MAX_BODY_SIZE, Chat
from ._connection import DEFAULT_MAX_HEAD_SIZE, ClientConnection
from ._content import ContentDecoder, decode_content
from ._credentials import DEFAULT_EXPIRY_MARGIN, DEFAULT_MAX_USES, Credentials
from ._errors import (
    AuthExpired,
    AuthInvalid,
    ContentRewritten,
    GPTalkError,
    HTTPStatusError,
    LocalProtocolError,
    ProtocolError,
    QuotaExhausted,
    RemoteProtocolError,
    ServiceError,
    SSEEventTooLarge,
    SSELineTooLong,
    SSESizeError,
    StreamInterrupted,
    excerpt,
)
from ._events import (
    ChatDone,
    ChatEvent,
    LoggedIn,
    ReconnectNeeded,
    Request,
    TextDelta,
    TextRewritten,
)
from ._state import CLIENT_TRANSITIONS, ClientInput, ClientState, state_diagram
from ._util import NEED_DATA, PAUSED, SEND_REQUEST, Sentinel
from ._version import __version__
from ._wire import (
    APP_ID,
    DEFAULT_MODEL,
    DEFAULT_ORIGIN,
    DEFAULT_USER_AGENT,
    DONE_MARKER,
    LOGIN_PATH,
    MAX_EXPIRES_AT,
    MAX_TOKEN_LENGTH,
    STREAM_PATH,
    TEXT_PATH,
    ErrorCode,
    format_prompt,
)
from .cassette._format import (
    FORMAT_VERSION,
    MAX_DEPTH,
    MAX_TIME,
    Cassette,
    CassetteError,
    Interaction,
    RecordedChunk,
    RecordedRequest,
    RecordedResponse,
)
from .cassette._har import to_har
from .cassette._lint import lint
from .cassette._recorder import Recorder
from .cassette._redact import MIN_SECRET_LENGTH, check_secrets, redact
from .cassette._replay import EOF, CassetteMismatch, CassetteUnplayed, ReplayConnection, Replayer
from .server._connection import (
    DEFAULT_MAX_REQUEST_BODY,
    DEFAULT_MAX_REQUEST_HEAD,
    BadRequest,
    Close,
    RequestReceived,
    Send,
    ServerConnection,
)
from .server._faults import FAULT_KINDS, Fault, FaultKind, parse_fault
from .server._json_depth import MAX_JSON_DEPTH
from .server._replies import ReplyGenerator, default_reply, expected_reply, sized_reply, text_reply
from .server._service import (
    DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_MAX_PENDING_STREAMS,
    DEFAULT_STREAM_TTL,
    Abort,
    Chunk,
    Drip,
    End,
    Head,
    Pause,
    Service,
    Step,
)
from .sse._encoder import encode_comment, encode_event
from .sse._event import SSEEvent
from .sse._parser import DEFAULT_MAX_EVENT_SIZE, DEFAULT_MAX_LINE_SIZE, SSEParser

__all__ = [
    "APP_ID",
    "CLIENT_TRANSITIONS",
    "DEFAULT_EXPIRY_MARGIN",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_MAX_HEAD_SIZE",
    "DEFAULT_MAX_LINE_SIZE",
    "DEFAULT_MAX_PENDING_BYTES",
    "DEFAULT_MAX_PENDING_STREAMS",
    "DEFAULT_MAX_REQUEST_BODY",
    "DEFAULT_MAX_REQUEST_HEAD",
    "DEFAULT_MAX_USES",
    "DEFAULT_MODEL",
    "DEFAULT_ORIGIN",
    "DEFAULT_STREAM_TTL",
    "DEFAULT_USER_AGENT",
    "DONE_MARKER",
    "EOF",
    "FAULT_KINDS",
    "FORMAT_VERSION",
    "LOGIN_PATH",
    "MAX_DEPTH",
    "MAX_EXPIRES_AT",
    "MAX_JSON_DEPTH",
    "MAX_TIME",
    "MAX_TOKEN_LENGTH",
    "MIN_SECRET_LENGTH",
    "NEED_DATA",
    "PAUSED",
    "SEND_REQUEST",
    "STREAM_PATH",
    "TEXT_PATH",
    "Abort",
    "AuthExpired",
    "AuthInvalid",
    "BadRequest",
    "Cassette",
    "CassetteError",
    "CassetteMismatch",
    "CassetteUnplayed",
    "Chat",
    "ChatDone",
    "ChatEvent",
    "Chunk",
    "ClientConnection",
    "ClientInput",
    "ClientState",
    "Close",
    "ContentDecoder",
    "ContentRewritten",
    "Credentials",
    "Drip",
    "End",
    "ErrorCode",
    "Fault",
    "FaultKind",
    "GPTalkError",
    "HTTPStatusError",
    "Head",
    "Interaction",
    "LocalProtocolError",
    "LoggedIn",
    "Pause",
    "ProtocolError",
    "QuotaExhausted",
    "ReconnectNeeded",
    "RecordedChunk",
    "RecordedRequest",
    "RecordedResponse",
    "Recorder",
    "RemoteProtocolError",
    "ReplayConnection",
    "Replayer",
    "ReplyGenerator",
    "Request",
    "RequestReceived",
    "SSEEvent",
    "SSEEventTooLarge",
    "SSELineTooLong",
    "SSEParser",
    "SSESizeError",
    "Send",
    "Sentinel",
    "ServerConnection",
    "Service",
    "ServiceError",
    "Step",
    "StreamInterrupted",
    "TextDelta",
    "TextRewritten",
    "__version__",
    "check_secrets",
    "decode_content",
    "default_reply",
    "encode_comment",
    "encode_event",
    "excerpt",
    "expected_reply",
    "format_prompt",
    "lint",
    "parse_fault",
    "redact",
    "sized_reply",
    "state_diagram",
    "text_reply",
    "to_har",
]

# Errors and events are shown as gptalk_proto.X, not gptalk_proto._module.X.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("gptalk_proto._"):
        _obj.__module__ = "gptalk_proto"
del _name, _obj
