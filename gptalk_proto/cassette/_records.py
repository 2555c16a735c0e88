"""The records a cassette holds: one exchange's request, its response's
chunks and events, and the error every cassette check raises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .._errors import GPTalkError
from ..sse._event import SSEEvent
from ._profiles import GPTALK

__all__ = [
    "ENDINGS",
    "FORMAT_VERSION",
    "MAX_DEPTH",
    "MAX_TIME",
    "CassetteError",
    "Interaction",
    "RecordedChunk",
    "RecordedRequest",
    "RecordedResponse",
]

#: The cassette format's version (``format_version``): readers refuse newer ones.
FORMAT_VERSION = 1

#: How a recorded response ended: its body completed ("complete"), the
#: server closed the connection after it or in its middle ("closed"; not a
#: close that answered the client's own, after a whole body), or the
#: recorder stopped it at an event limit or idle timeout, or a recording
#: proxy stopped with it in flight ("stopped").
ENDINGS = ("complete", "closed", "stopped")

#: The latest time offset a cassette may hold, in seconds since the recording
#: began: a week, far beyond any recording session.  A larger offset is a
#: corrupt or hostile file -- replayed as recorded it would wait that long,
#: and date arithmetic on it (the HAR export) overflows.
MAX_TIME = 7 * 24 * 3600.0

#: The deepest nesting of JSON arrays and objects a cassette file may have.
#: The format uses six levels (cassette, interactions, interaction, request,
#: body, data) plus a recorded JSON body's own few; Python's JSON parser
#: recurses once per level, so a file nested 100,000 deep must be refused
#: before it is parsed (a linear scan does it).
MAX_DEPTH = 64


class CassetteError(GPTalkError):
    """A cassette is malformed, newer than this version reads, or inconsistent.

    The message names the field (``interactions[2].chunks[5].data``).
    """


@dataclass(frozen=True)
class RecordedChunk:
    """Bytes from one read (or write), ``t`` seconds after recording began."""

    t: float
    data: bytes


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the client wrote it."""

    t: float
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def json(self) -> Any:
        """The body as JSON (None when it is not JSON), parsed once."""
        return self._json

    @cached_property
    def _json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            # Nested past the parser's recursion (a hostile client's body,
            # recorded by the proxy): kept as bytes, not JSON.
            return None

    # What replay compares every request it matches with, read once per
    # recorded request rather than once per replay (never changed after).

    @cached_property
    def _target_parts(self) -> tuple[str, dict[str, list[str]]]:
        """The target's path and its query (``parse_qs``: values percent-decoded),
        read once and shared by every replay (private: never changed)."""
        parts = urlsplit(self.target)
        return parts.path, parse_qs(parts.query)

    @cached_property
    def _header_map(self) -> dict[str, str]:
        """The headers by lower-case name (the last of a repeated name wins),
        read once and shared by every replay (private: never changed)."""
        return header_map(self.headers)

    @cached_property
    def _known_heads(self) -> dict[bytes, tuple[object, int, str]]:
        """Request heads (their bytes) already found to match this request:
        profile, body length, ``"METHOD path"``.  Filled and read by replay
        (private; see ``_replay.MAX_KNOWN_HEADS`` for its cap)."""
        return {}


def header_map(headers: Any) -> dict[str, str]:
    """``(name, value)`` pairs (``str`` or latin-1 ``bytes`` values) by
    lower-case name; the last of a repeated name wins."""
    out: dict[str, str] = {}
    for name, value in headers:
        out[str(name).lower()] = value if isinstance(value, str) else value.decode("latin-1")
    return out


@dataclass(frozen=True)
class RecordedResponse:
    """A response as it arrived: the raw chunks, and what they say."""

    status: int
    headers: tuple[tuple[str, str], ...]
    chunks: tuple[RecordedChunk, ...]
    events: tuple[SSEEvent, ...] = ()
    end: str = "complete"

    @property
    def wire(self) -> bytes:
        """The response's bytes as received: its chunks joined."""
        return b"".join(chunk.data for chunk in self.chunks)


@dataclass(frozen=True)
class Interaction:
    """One request and its response, on connection number ``connection``."""

    connection: int
    request: RecordedRequest
    response: RecordedResponse

    @property
    def kind(self) -> str:
        """``login``, ``text``, ``stream`` or ``other``, from the path (the
        GPTalk profile's steps; other APIs' steps are all ``other``)."""
        return GPTALK.kind(self.request.target.split("?", 1)[0])
