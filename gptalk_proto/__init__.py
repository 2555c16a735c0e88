"""gptalk_proto: the GPTalk chat-streaming protocol, sans IO.

Bytes in, events out.  The core does no IO, reads no clock and draws no
randomness: time and entropy come in as arguments.

* :class:`SSEParser`, :func:`encode_event`: ``text/event-stream`` exact to the
  WHATWG HTML standard.
* :class:`Chat` (exchange level) and :class:`ClientConnection` (bytes level):
  one chat as a client state machine; :class:`Credentials` shared by chats.
* :func:`check_header_name`, :func:`check_header_value`,
  :func:`check_text_value`: the checks user-supplied values pass before they
  go on the wire.

The rest lives in rooms: :mod:`gptalk_proto.sse` (the generic SSE parser and
encoder), :mod:`gptalk_proto.server` (the server role, which the reference
server runs), :mod:`gptalk_proto.cassette` (record and replay) and
:mod:`gptalk_proto.testing` (test helpers).
"""

from ._chat import DEFAULT_MAX_BODY_SIZE, Chat
from ._connection import DEFAULT_MAX_HEAD_SIZE, ClientConnection
from ._content import ContentDecoder, decode_content
from ._credentials import (
    DEFAULT_EXPIRY_MARGIN,
    DEFAULT_MAX_PENDING_LOGINS,
    DEFAULT_MAX_USES,
    NEED_HANDLE,
    Credentials,
    NeedHandle,
)
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
from ._public import show_as_public
from ._state import CLIENT_TRANSITIONS, ClientInput, ClientState, state_diagram
from ._util import (
    NEED_DATA,
    PAUSED,
    SEND_REQUEST,
    Sentinel,
    check_header_name,
    check_header_value,
    check_text_value,
)
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
from .sse import DEFAULT_MAX_EVENT_SIZE, DEFAULT_MAX_LINE_SIZE, SSEEvent, SSEParser, encode_event

__all__ = [
    "APP_ID",
    "CLIENT_TRANSITIONS",
    "DEFAULT_EXPIRY_MARGIN",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_MAX_HEAD_SIZE",
    "DEFAULT_MAX_LINE_SIZE",
    "DEFAULT_MAX_PENDING_LOGINS",
    "DEFAULT_MAX_USES",
    "DEFAULT_MODEL",
    "DEFAULT_ORIGIN",
    "DEFAULT_USER_AGENT",
    "DONE_MARKER",
    "LOGIN_PATH",
    "MAX_EXPIRES_AT",
    "MAX_TOKEN_LENGTH",
    "NEED_DATA",
    "NEED_HANDLE",
    "PAUSED",
    "SEND_REQUEST",
    "STREAM_PATH",
    "TEXT_PATH",
    "AuthExpired",
    "AuthInvalid",
    "Chat",
    "ChatDone",
    "ChatEvent",
    "ClientConnection",
    "ClientInput",
    "ClientState",
    "ContentDecoder",
    "ContentRewritten",
    "Credentials",
    "ErrorCode",
    "GPTalkError",
    "HTTPStatusError",
    "LocalProtocolError",
    "LoggedIn",
    "NeedHandle",
    "ProtocolError",
    "QuotaExhausted",
    "ReconnectNeeded",
    "RemoteProtocolError",
    "Request",
    "SSEEvent",
    "SSEEventTooLarge",
    "SSELineTooLong",
    "SSEParser",
    "SSESizeError",
    "Sentinel",
    "ServiceError",
    "StreamInterrupted",
    "TextDelta",
    "TextRewritten",
    "__version__",
    "check_header_name",
    "check_header_value",
    "check_text_value",
    "decode_content",
    "encode_event",
    "excerpt",
    "format_prompt",
    "state_diagram",
]

# Errors and events are shown as gptalk_proto.X, not gptalk_proto._module.X.
show_as_public(globals(), __name__, __name__ + "._")
