"""Server-sent events: the encoder.

Everything :func:`encode_event` accepts comes back unchanged through
:class:`~gptalk_proto.SSEParser`; what could not (a line end inside ``event``
or ``id``, a CR in ``data``, a NUL in ``id``, text that is not valid Unicode)
is refused with :class:`~gptalk_proto.LocalProtocolError` instead of being
silently altered.
"""

from __future__ import annotations

from .._errors import LocalProtocolError

__all__ = ["encode_comment", "encode_event"]

_NEWLINES = ("\n", "\r\n", "\r")


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise LocalProtocolError(f"{what} is not valid Unicode text: {exc.reason}") from None


def _check_newline(newline: str) -> None:
    if newline not in _NEWLINES:
        raise LocalProtocolError(f"newline must be one of {_NEWLINES!r}, not {newline!r}")


def encode_event(
    data: str,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
    newline: str = "\n",
) -> bytes:
    """Encode one event, blank line included.

    ``data`` may span lines (LF-separated): each line becomes a ``data:``
    field, which the parser joins back with LF.  Every field is written as
    ``name: value``: the parser removes exactly one space after the colon, so a
    value that itself starts with a space survives.

    ``newline`` picks the line end (LF, CRLF or CR); the parser reads all three.
    """
    _check_newline(newline)
    if not isinstance(data, str):
        raise LocalProtocolError(f"data must be a str, not {type(data).__name__}")
    parts: list[str] = []
    if event is not None:
        if "\r" in event or "\n" in event:
            raise LocalProtocolError("an SSE event type cannot contain CR or LF")
        parts.append(f"event: {event}{newline}")
    if id is not None:
        if "\r" in id or "\n" in id:
            raise LocalProtocolError("an SSE id cannot contain CR or LF")
        if "\x00" in id:
            # spec: an id field containing U+0000 NULL is ignored by the parser.
            raise LocalProtocolError("an SSE id cannot contain NUL (parsers ignore such ids)")
        parts.append(f"id: {id}{newline}")
    if retry is not None:
        if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
            raise LocalProtocolError(f"retry must be a non-negative int, not {retry!r}")
        parts.append(f"retry: {retry}{newline}")
    if "\r" in data:
        # A CR is a line end on the wire and would come back as LF.
        raise LocalProtocolError("SSE data cannot carry CR; normalise line ends to LF first")
    for line in data.split("\n"):
        parts.append(f"data: {line}{newline}")
    parts.append(newline)
    return _utf8("".join(parts), "SSE event")


def encode_comment(text: str = "", *, newline: str = "\n") -> bytes:
    """Encode a comment line (``:text``), as used for keep-alives.

    A comment changes nothing in the parser's state, so it may be sent
    between any two events, as often as a connection needs traffic.
    """
    _check_newline(newline)
    if "\r" in text or "\n" in text:
        raise LocalProtocolError("an SSE comment cannot contain CR or LF")
    return _utf8(f":{text}{newline}", "SSE comment")
