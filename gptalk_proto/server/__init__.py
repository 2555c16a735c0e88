"""The server role, sans IO: what the reference server runs.

* :class:`ServerConnection`: HTTP/1.1 bytes in, :class:`RequestReceived` and
  :class:`BadRequest` out, with :class:`Send` / :class:`Close` steps back.
* :class:`Service`: the GPTalk endpoints (login, text, stream) as a pure
  function of a request and a clock, answering with steps (:class:`Head`,
  :class:`Chunk`, :class:`Drip`, :class:`Pause`, :class:`Abort`, :class:`End`).
* Faults (:func:`parse_fault`, :data:`FAULT_KINDS`) and reply generators
  (:func:`default_reply` and friends) that shape what the service answers.
"""

from .._public import show_as_public
from ._connection import (
    DEFAULT_MAX_REQUEST_BODY,
    DEFAULT_MAX_REQUEST_HEAD,
    BadRequest,
    Close,
    RequestReceived,
    Send,
    ServerConnection,
)
from ._faults import FAULT_KINDS, Fault, FaultKind, parse_fault
from ._json_depth import MAX_JSON_DEPTH
from ._replies import ReplyGenerator, default_reply, expected_reply, sized_reply, text_reply
from ._service import (
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

__all__ = [
    "DEFAULT_MAX_PENDING_BYTES",
    "DEFAULT_MAX_PENDING_STREAMS",
    "DEFAULT_MAX_REQUEST_BODY",
    "DEFAULT_MAX_REQUEST_HEAD",
    "DEFAULT_STREAM_TTL",
    "FAULT_KINDS",
    "MAX_JSON_DEPTH",
    "Abort",
    "BadRequest",
    "Chunk",
    "Close",
    "Drip",
    "End",
    "Fault",
    "FaultKind",
    "Head",
    "Pause",
    "ReplyGenerator",
    "RequestReceived",
    "Send",
    "ServerConnection",
    "Service",
    "Step",
    "default_reply",
    "expected_reply",
    "parse_fault",
    "sized_reply",
    "text_reply",
]

# Shown as gptalk_proto.server.X, not gptalk_proto.server._module.X.
show_as_public(globals(), __name__, __name__ + "._")
