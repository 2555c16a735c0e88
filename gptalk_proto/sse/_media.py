"""Whether a response is an event stream: decided here, once.

WHATWG HTML section 9.2: an event stream is served as ``text/event-stream``.
RFC 9110 section 8.3.1: the media type is what comes before any ``;``
parameters, case-insensitive, with optional whitespace around it.
"""

from __future__ import annotations

__all__ = ["EVENT_STREAM", "is_event_stream", "media_type"]

#: The media type of an event stream.
EVENT_STREAM = "text/event-stream"


def media_type(content_type: str | bytes) -> str:
    """The media type of a ``Content-Type`` value: lowercase, no parameters."""
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    return content_type.split(";", 1)[0].strip().lower()


def is_event_stream(content_type: str | bytes) -> bool:
    """Whether a ``Content-Type`` value says ``text/event-stream``."""
    return media_type(content_type) == EVENT_STREAM
