"""Hypothesis strategies for GPTalk server responses, valid and faulty.

An exchange is the three raw HTTP/1.1 responses a server gives one chat
(login, text request, stream), each framed by ``Content-Length``, chunked
encoding or the end of the connection, with what a correct client must make
of them: the whole reply, or the error class it must end in.  Feed them to a
client with :func:`~gptalk_proto.testing.play_responses`, or to any other
client through a socket.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from hypothesis import strategies as st

from .._errors import (
    AuthExpired,
    AuthInvalid,
    GPTalkError,
    HTTPStatusError,
    QuotaExhausted,
    RemoteProtocolError,
    ServiceError,
    StreamInterrupted,
)
from .._wire import DONE_MARKER, ErrorCode
from ..sse._encoder import encode_comment, encode_event
from ._scripted import JSON_TYPE, SSE_TYPE, http_response

__all__ = [
    "ScriptedExchange",
    "gptalk_exchanges",
    "gptalk_raw_exchanges",
    "gptalk_replies",
    "gptalk_stream_bodies",
]

#: ``expires_at`` of drawn logins: far after the default clock of
#: :func:`~gptalk_proto.testing.play_responses` (1,700,000,000).
_EXPIRES_AT = 1_800_000_000


class ScriptedExchange(NamedTuple):
    """The raw responses a server gives one chat, and the right outcome.

    * ``responses``: login, text and stream responses, in the order the client
      asks (fewer when the exchange fails early).
    * ``reply``: the whole reply a correct client returns, or ``None``.
    * ``error``: the error class a correct client ends in, or ``None``.
    * ``fault``: what was done to the responses (``""``: nothing).
    """

    responses: tuple[bytes, ...]
    reply: str | None
    error: type[GPTalkError] | None
    fault: str


def gptalk_replies(
    *, max_pieces: int = 8, max_piece_size: int = 12
) -> st.SearchStrategy[list[str]]:
    """Replies as the service streamed them: a list of pieces, the cumulative
    content after each being the pieces so far.  Any text UTF-8 can carry:
    quotes, backslashes, CR, LF, U+2028, non-BMP characters, empty pieces."""
    chars = st.one_of(
        st.sampled_from(list('"\\\r\n\t\u2028\u00e9\U0001f600 /')),
        st.characters(codec="utf-8"),
    )
    return st.lists(st.text(chars, max_size=max_piece_size), max_size=max_pieces)


def _content_json(content: str, ascii_only: bool, spaced: bool, extra: bool) -> str:
    value: dict[str, Any] = {"content": content}
    if extra:
        value = {"role": "assistant", **value}
    separators = (", ", ": ") if spaced else (",", ":")
    return json.dumps(value, ensure_ascii=ascii_only, separators=separators)


@st.composite
def gptalk_stream_bodies(
    draw: st.DrawFn, pieces: list[str] | None = None, *, done: bool = True
) -> tuple[bytes, str]:
    """A stream body for ``pieces`` (drawn if ``None``) and its whole reply.

    Each event carries the cumulative content as JSON (ASCII-escaped or not,
    with or without spaces and extra keys); line ends vary by event;
    keep-alive comments and events of other types (which carry no reply
    text) come in between; ``data: [DONE]`` ends it unless ``done`` is false.
    """
    if pieces is None:
        pieces = draw(gptalk_replies())
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    parts: list[bytes] = []
    content = ""
    for piece in pieces:
        content += piece
        if draw(st.integers(0, 4)) == 0:
            parts.append(encode_comment(" keep-alive", newline=newline))
        if draw(st.integers(0, 6)) == 0:
            parts.append(encode_event("{}", event="ping", newline=newline))
        data = _content_json(content, draw(st.booleans()), draw(st.booleans()), draw(st.booleans()))
        parts.append(encode_event(data, newline=draw(st.sampled_from(["\n", "\r\n", newline]))))
    if done:
        parts.append(encode_event(DONE_MARKER, newline=newline))
    return b"".join(parts), content


_ENVELOPE_ERRORS: dict[str, tuple[int, str, type[ServiceError]]] = {
    "quota": (ErrorCode.QUOTA_EXHAUSTED, "quota exhausted", QuotaExhausted),
    "expired": (ErrorCode.AUTH_EXPIRED, "token expired", AuthExpired),
    "invalid": (ErrorCode.AUTH_INVALID, "invalid token", AuthInvalid),
    "bad-request": (ErrorCode.BAD_REQUEST, "bad request", ServiceError),
    "internal": (ErrorCode.INTERNAL, "internal error", ServiceError),
}
_STEPS = ("login", "text", "stream")
# Faults that can hit any of the three responses; those of bodies (login and
# text only); those of the event stream.
_ANY_STEP_FAULTS = ("status", "envelope", "closed", "bad-http")
_BODY_FAULTS = ("not-json", "no-token")
_STREAM_FAULTS = ("cut", "no-done", "malformed", "no-content", "rewrite")
_BAD_HEADS = [b"HTTP/1.1 abc\r\n\r\n", b"HELLO\r\n\r\n", b"HTTP/1.1 200 OK\r\nx\r\n\r\n"]
# What a mutation inserts now and then: line ends and a last chunk.
_INSERTS = [b"\r", b"\n", b"\r\n", b"0\r\n\r\n"]


def _envelope(kind: str) -> bytes:
    code, msg, _ = _ENVELOPE_ERRORS[kind]
    return json.dumps({"code": int(code), "msg": msg}).encode()


@st.composite
def gptalk_exchanges(draw: st.DrawFn, *, faulty: bool | None = None) -> ScriptedExchange:
    """A chat's responses, valid (``faulty=False``), with one fault
    (``True``) or either (``None``), and the outcome a client must reach.

    The faults: a 4xx/5xx status, an error envelope (HTTP 200 without
    ``data``: quota, expired, invalid, bad request, internal), a close before
    the answer, a broken HTTP head, a body that is not JSON or lacks its
    token, and on the stream: a cut mid-event, no ``[DONE]``, malformed JSON,
    an event without ``content``, and a rewrite of earlier text (which is not
    an error: the reply is the rewritten text).
    """
    framings = st.sampled_from(["length", "chunked", "close"])
    sizes = st.lists(st.integers(1, 64), max_size=4)

    def frame(status: int, body: bytes, content_type: str = JSON_TYPE) -> bytes:
        return http_response(
            status, body, content_type=content_type, framing=draw(framings), chunk_sizes=draw(sizes)
        )

    token = draw(st.text("abcdefXYZ0123456789-_.", min_size=1, max_size=40))
    login_body = json.dumps({"code": 0, "data": {"token": token, "expires_at": _EXPIRES_AT}})
    text_body = json.dumps({"code": 0, "data": {"token": "s-" + token}})
    pieces = draw(gptalk_replies())
    if faulty is None:
        faulty = draw(st.booleans())
    if not faulty:
        stream_body, whole_reply = draw(gptalk_stream_bodies(pieces))
        valid = (
            frame(200, login_body.encode()),
            frame(200, text_body.encode()),
            frame(200, stream_body, SSE_TYPE),
        )
        return ScriptedExchange(valid, whole_reply, None, "")

    step = draw(st.sampled_from(_STEPS))
    kinds = _ANY_STEP_FAULTS + (_STREAM_FAULTS if step == "stream" else _BODY_FAULTS)
    kind = draw(st.sampled_from(kinds))
    good = [login_body.encode(), text_body.encode()]
    error: type[GPTalkError] | None = RemoteProtocolError
    reply: str | None = None
    fault = f"{kind} on {step}"
    if kind == "status":
        status = draw(st.sampled_from([400, 401, 403, 404, 429, 500, 502, 503]))
        bad = frame(status, draw(st.sampled_from([b"", b"oops", b'{"msg": "down"}'])))
        error, fault = HTTPStatusError, f"status {status} on {step}"
    elif kind == "envelope":
        which = draw(st.sampled_from(sorted(_ENVELOPE_ERRORS)))
        bad = frame(200, _envelope(which))
        error, fault = _ENVELOPE_ERRORS[which][2], f"{which} envelope on {step}"
    elif kind == "closed":
        bad = b""  # the server closes without a byte of answer
    elif kind == "bad-http":
        bad = draw(st.sampled_from(_BAD_HEADS))
    elif kind == "not-json":
        bad = frame(200, draw(st.sampled_from([b"", b"<html>", b"[1, 2]", b'{"data": 1}'])))
    elif kind == "no-token":
        bad = frame(200, json.dumps({"code": 0, "data": {}}).encode())
    else:
        bad, reply, error = _stream_fault(draw, kind, pieces, frame)
    before = [frame(200, body) for body in good[: _STEPS.index(step)]]
    return ScriptedExchange((*before, bad), reply, error, fault)


def _stream_fault(
    draw: st.DrawFn, kind: str, pieces: list[str], frame: Any
) -> tuple[bytes, str | None, type[GPTalkError] | None]:
    if kind == "rewrite":
        # From some event on, the content no longer extends what came before.
        at = draw(st.integers(0, len(pieces)))
        prefix = draw(st.text(min_size=1, max_size=4))
        contents = ["".join(pieces[: i + 1]) for i in range(len(pieces))]
        contents = [c if i < at else "(edited) " + prefix + c for i, c in enumerate(contents)]
        # The last event always rewrites, unless nothing came before it.
        contents.append("(edited) " + prefix + "".join(pieces))
        body = b"".join(encode_event(json.dumps({"content": c})) for c in contents)
        return frame(200, body + encode_event(DONE_MARKER), SSE_TYPE), contents[-1], None
    if kind == "no-done":
        body, _ = draw(gptalk_stream_bodies(pieces, done=False))
        return frame(200, body, SSE_TYPE), None, StreamInterrupted
    if kind == "cut":
        # Half of an event, then the connection ends (a chunked body without
        # its last chunk, or a Content-Length never reached).
        body, _ = draw(gptalk_stream_bodies(pieces, done=False))
        event = encode_event(json.dumps({"content": "".join(pieces) + "more"}))
        whole = frame(200, body + event + encode_event(DONE_MARKER), SSE_TYPE)
        head_end = whole.index(b"\r\n\r\n") + 4
        cut = head_end + draw(st.integers(len(body), len(body) + len(event) - 1))
        return whole[:cut], None, StreamInterrupted
    body, _ = draw(gptalk_stream_bodies(pieces, done=False))
    if kind == "malformed":
        broken = json.dumps({"content": "".join(pieces)})[:-2]  # no closing '"}'
    else:  # no-content
        broken = json.dumps({"text": "".join(pieces)})
    return (
        frame(200, body + encode_event(broken) + encode_event(DONE_MARKER), SSE_TYPE),
        None,
        RemoteProtocolError,
    )


@st.composite
def gptalk_raw_exchanges(draw: st.DrawFn) -> tuple[bytes, ...]:
    """Server bytes with no known answer: arbitrary bytes, or the responses
    of an exchange (valid or faulty) mutated (bytes flipped, dropped,
    inserted, repeated; cut short).  A correct client ends each in a typed
    error or a valid reply, never in anything else."""
    if draw(st.integers(0, 4)) == 0:
        return tuple(draw(st.lists(st.binary(max_size=200), max_size=4)))
    responses = list(draw(gptalk_exchanges()).responses)
    for _ in range(draw(st.integers(1, 4))):
        if not responses:
            break
        index = draw(st.integers(0, len(responses) - 1))
        data = bytearray(responses[index])
        at = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(["flip", "drop", "insert", "repeat", "truncate"]))
        if how == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "drop":
            del data[at : at + draw(st.integers(1, 8))]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from(_INSERTS))
        elif how == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 16))]
        else:
            del data[at:]
        responses[index] = bytes(data)
    return tuple(responses)
