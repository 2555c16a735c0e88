"""``text/event-stream``, exact to the WHATWG HTML standard, and nothing else.

This room knows no GPTalk: the parser (:class:`SSEParser`), the event it
dispatches (:class:`SSEEvent`), the encoder (:func:`encode_event`,
:func:`encode_comment`), and :func:`is_event_stream`, the one place that
decides whether a response is an event stream.  Its size errors are the core's
(:class:`~gptalk_proto.SSESizeError` and its two kinds), re-exported here so
that an SSE-only user needs this one import.
"""

from .._errors import SSEEventTooLarge, SSELineTooLong, SSESizeError
from .._public import show_as_public
from ._encoder import encode_comment, encode_event
from ._event import SSEEvent
from ._media import EVENT_STREAM, is_event_stream, media_type
from ._parser import DEFAULT_MAX_EVENT_SIZE, DEFAULT_MAX_LINE_SIZE, SSEParser

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_MAX_LINE_SIZE",
    "EVENT_STREAM",
    "SSEEvent",
    "SSEEventTooLarge",
    "SSELineTooLong",
    "SSEParser",
    "SSESizeError",
    "encode_comment",
    "encode_event",
    "is_event_stream",
    "media_type",
]

# Shown as gptalk_proto.sse.X, not gptalk_proto.sse._module.X.
show_as_public(globals(), __name__, __name__ + "._")
