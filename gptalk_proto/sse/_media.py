"""Whether a response is an event stream: decided here, once.

WHATWG HTML section 9.2: an event stream is served as ``text/event-stream``.
RFC 9110 section 8.3.1: the media type is what comes before any ``;``
parameters, case-insensitive, with optional whitespace around it.
"""

from __future__ import annotations

import functools

__all__ = ["EVENT_STREAM", "is_event_stream", "media_type"]

#: The media type of an event stream.
EVENT_STREAM = "text/event-stream"


#: Content-Type values (bytes, as HTTP parsers hand them over) whose media
#: types are kept, at most: a server sends the same two or three in every
#: response, and each was decoded, split, stripped and lowercased again.
MAX_KNOWN_CONTENT_TYPES = 32
#: Longer values are worked out every time, never kept: the cache holds at
#: most MAX_KNOWN_CONTENT_TYPES times this many bytes of a server's text.
MAX_KNOWN_CONTENT_TYPE_LENGTH = 128


def media_type(content_type: str | bytes | bytearray) -> str:
    """The media type of a ``Content-Type`` value: lowercase, no parameters."""
    if type(content_type) is bytes and len(content_type) <= MAX_KNOWN_CONTENT_TYPE_LENGTH:
        return _known_media_type(content_type)
    if isinstance(content_type, (bytes, bytearray)):
        content_type = content_type.decode("latin-1")
    return _media_type(content_type)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


@functools.lru_cache(maxsize=MAX_KNOWN_CONTENT_TYPES)
def _known_media_type(content_type: bytes) -> str:
    return _media_type(content_type.decode("latin-1"))


def is_event_stream(content_type: str | bytes) -> bool:
    """Whether a ``Content-Type`` value says ``text/event-stream``."""
    return media_type(content_type) == EVENT_STREAM
