"""Coverage-guided fuzzing of the SSE parser and the client and server machines.

Run with atheris (``pip install 'gptalk-proto[fuzz]'``)::

    python -m gptalk_proto.testing.fuzz sse -max_total_time=60
    python -m gptalk_proto.testing.fuzz client -runs=100000 my-corpus/
    python -m gptalk_proto.testing.fuzz server -max_total_time=60

Arguments after the target go to libFuzzer.  Without a corpus directory, a
fresh one seeded with sample inputs is made in the temporary directory (its
path is printed).  A crash is an invariant broken; libFuzzer saves the input
as ``crash-*`` and :func:`check_sse` / :func:`check_client` /
:func:`check_server` replay it.

The invariants (each an ``AssertionError``, or any exception but the allowed
ones, when broken):

``sse``
    The input's first two bytes pick the parser's caps and a chunking; the
    rest is the stream.  Only :class:`~gptalk_proto.RemoteProtocolError` (and
    its subclasses) escapes; events, last event ID, retry and the error class
    are the same fed whole, at random splits and byte by byte; without caps,
    the result equals the reference parser's; a failed parser stays failed.

``client``
    The first byte picks a chunking; the rest is the server's responses,
    separated by :data:`SEPARATOR`, answering a login, a text request and a
    stream request in turn.  The chat ends in a
    :class:`~gptalk_proto.GPTalkError` or in a reply whose events add up
    (:func:`~gptalk_proto.testing.check_reply`), never in another exception
    or a machine waiting for bytes after EOF; the events and the error class
    do not depend on the chunking.

``server``
    The first byte picks the caps (request body, pending prompts) and a
    chunking; the rest is what one client connection sends.  The
    :class:`~gptalk_proto.server.ServerConnection` and its
    :class:`~gptalk_proto.server.Service` answer every request with a response that
    starts with a status line, or close; never another exception, an endless
    response or a wait for bytes after EOF
    (:func:`~gptalk_proto.testing.play_requests`); the held prompts stay
    under their caps; the statuses do not depend on the chunking.
"""

from __future__ import annotations

import importlib
import json
import random
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from .._chat import Chat
from .._connection import ClientConnection
from .._credentials import Credentials
from .._errors import RemoteProtocolError, SSESizeError
from .._wire import DONE_MARKER, LOGIN_PATH, STREAM_PATH, TEXT_PATH
from ..server._connection import (
    DEFAULT_MAX_REQUEST_BODY,
    DEFAULT_MAX_REQUEST_HEAD,
    ServerConnection,
)
from ..server._service import DEFAULT_MAX_PENDING_BYTES, DEFAULT_MAX_PENDING_STREAMS, Service
from ..sse._encoder import encode_comment, encode_event
from ..sse._event import SSEEvent
from ..sse._parser import DEFAULT_MAX_EVENT_SIZE, DEFAULT_MAX_LINE_SIZE, SSEParser
from ._reference_sse import reference_parse
from ._scripted import SSE_TYPE, check_reply, http_response, play_responses
from ._served import Served, play_requests

__all__ = [
    "SEPARATOR",
    "TARGETS",
    "check_client",
    "check_server",
    "check_sse",
    "main",
    "seeds",
]

# The packages the fuzzer instruments for coverage.
_INSTRUMENTED = ("gptalk_proto", "h11")

#: Separates the server's responses in a ``client`` input.
SEPARATOR = b"\x00--next--\x00"

# Byte-by-byte feeding costs one parser call per byte: done only up to here.
_MAX_BYTEWISE = 2048

_Outcome = tuple[list[SSEEvent], str, int | None, type[Exception] | None]


def _cut(data: bytes, seed: int, max_piece: int) -> list[bytes]:
    # Seeded by the input itself: the same input always splits the same way.
    rng = random.Random(seed)
    chunks = []
    start = 0
    while start < len(data):
        end = start + rng.randint(1, max_piece)
        chunks.append(data[start:end])
        start = end
    return chunks


def _parse(chunks: Sequence[bytes], caps: tuple[int, int]) -> _Outcome:
    parser = SSEParser(max_line_size=caps[0], max_event_size=caps[1])
    events: list[SSEEvent] = []
    try:
        for chunk in chunks:
            events += parser.feed(chunk)
    except RemoteProtocolError as exc:
        if isinstance(exc, SSESizeError):
            events += exc.events
        try:
            parser.feed(b"data: x\n\n")
        except RemoteProtocolError:
            pass
        else:
            raise AssertionError("the parser took more bytes after failing") from None
        return events, parser.last_event_id, parser.retry, type(exc)
    if parser.close():
        raise AssertionError("close() dispatched events")
    return events, parser.last_event_id, parser.retry, None


def check_sse(data: bytes) -> None:
    """Check the SSE parser's invariants on one input (see the module doc)."""
    if len(data) < 2:
        return
    # Small caps now and then, so that size errors are reached.
    caps = (
        1 + data[0] // 2 if data[0] & 1 else DEFAULT_MAX_LINE_SIZE,
        1 + data[0] // 4 if data[0] & 2 else DEFAULT_MAX_EVENT_SIZE,
    )
    stream = data[2:]
    whole = _parse([stream], caps)
    ways = {"split": _cut(stream, data[1], 1 + data[1] % 16)}
    if len(stream) <= _MAX_BYTEWISE:
        ways["bytewise"] = [stream[i : i + 1] for i in range(len(stream))]
    for name, chunks in ways.items():
        if _parse(chunks, caps) != whole:
            raise AssertionError(f"fed {name}, the parser's result differs from fed whole")
    if not data[0] & 3:
        events, last_id, retry, _ = whole
        expected = reference_parse(stream)
        if whole[3] is None and (events, last_id, retry) != expected:
            raise AssertionError("the parser and the reference parser disagree")


def _client(caps: int) -> ClientConnection:
    chat = Chat(
        "fuzz",
        credentials=Credentials(),
        fingerprint="0123456789abcdef0123456789abcdef",
        # Small caps now and then, so that size errors are reached.
        max_body_size=64 if caps & 1 else 1 << 20,
        max_line_size=64 if caps & 2 else 1 << 20,
        max_event_size=64 if caps & 4 else 1 << 20,
    )
    return ClientConnection(chat, host="fuzz.test", max_head_size=256 if caps & 8 else 65536)


def check_client(data: bytes) -> None:
    """Check the client machine's invariants on one input (see the module doc)."""
    if not data:
        return
    responses = data[1:].split(SEPARATOR)
    whole = play_responses(_client(data[0] >> 4), responses)
    if whole.error is None:
        check_reply(whole.events)
    split = [_cut(response, data[0], 1 + data[0] % 16) for response in responses]
    again = play_responses(_client(data[0] >> 4), split)
    if (again.events, type(again.error)) != (whole.events, type(whole.error)):
        raise AssertionError("the chat's events or error depend on the chunking")


def _serve(caps: int, chunks: Sequence[bytes]) -> Served:
    # Small caps now and then, so that 413 and the pending caps are reached.
    # The head cap stays: h11 measures an incomplete head, the server a whole
    # one, so a head near the cap may pass whole and fail split.
    service = Service(
        entropy=bytes,  # zero tokens: the ones gptalk_requests() carries
        max_pending_bytes=64 if caps & 1 else DEFAULT_MAX_PENDING_BYTES,
        max_pending_streams=1 if caps & 2 else DEFAULT_MAX_PENDING_STREAMS,
    )
    conn = ServerConnection(service, max_body_size=64 if caps & 4 else DEFAULT_MAX_REQUEST_BODY)
    served = play_requests(conn, chunks)
    if service.pending_bytes > service.max_pending_bytes:
        raise AssertionError("the pending prompts went over their cap")
    if service.pending_streams > service.max_pending_streams:
        raise AssertionError("the pending streams went over their cap")
    return served


def check_server(data: bytes) -> None:
    """Check the server machine's invariants on one input (see the module doc)."""
    if not data:
        return
    raw = data[1:]
    whole = _serve(data[0] >> 4, [raw])
    if len(raw) < DEFAULT_MAX_REQUEST_HEAD:
        again = _serve(data[0] >> 4, _cut(raw, data[0], 1 + data[0] % 16))
        # Statuses, not bytes: h11 quotes what it had read in some messages.
        if (again.statuses, again.closed) != (whole.statuses, whole.closed):
            raise AssertionError("the server's responses depend on the chunking")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "sse": check_sse,
    "client": check_client,
    "server": check_server,
}


def seeds(target: str) -> list[bytes]:
    """Sample inputs to start a corpus for ``target`` from."""
    if target == "sse":
        streams = [
            b"data: hello\n\n",
            b'\xef\xbb\xbfid: 1\r\nretry: 500\r\nevent: ping\r\ndata: {"content": "Hi"}\r\n\r\n',
            b": keep-alive\r\rdata:a\rdata: b\r\rdata: [DONE]\r\r",
            encode_event('{"content": "caf\\u00e9 \\ud83d\\ude00"}') + encode_comment(" x"),
        ]
        return [prefix + stream for stream in streams for prefix in (b"\x00\x07", b"\x0f\x03")]
    if target == "server":
        return [prefix + chat for chat in _server_seeds() for prefix in (b"\x05", b"\xf3")]
    login = json.dumps({"code": 0, "data": {"token": "t", "expires_at": 1_800_000_000}})
    text = json.dumps({"code": 0, "data": {"token": "s"}})
    events = [encode_event(json.dumps({"content": "Hello"[:n]})) for n in range(1, 6)]
    stream = b"".join(events) + encode_event(DONE_MARKER)
    inputs = []
    for framing in ("length", "chunked", "close"):
        responses = [
            http_response(200, login.encode(), framing=framing, chunk_sizes=[7]),
            http_response(200, text.encode(), framing=framing),
            http_response(200, stream, content_type=SSE_TYPE, framing=framing, chunk_sizes=[9]),
        ]
        inputs.append(b"\x05" + SEPARATOR.join(responses))
    quota = json.dumps({"code": 42901, "msg": "quota exhausted"}).encode()
    inputs.append(b"\x03" + SEPARATOR.join([http_response(200, quota)]))
    return inputs


def _server_seeds() -> list[bytes]:
    token = "00" * 16
    login = json.dumps({"fingerprint": "0123456789abcdef" * 2, "platform": "fingerprint"})
    text = json.dumps({"content": 'Hi "you"', "accept": "stream", "model": "m"})
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(text), text.encode())

    def post(path: str, body: bytes, extra: str = "") -> bytes:
        head = f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
        return head.encode() + body

    auth = f"authorization: Bearer {token}\r\n"
    stream = f"GET {STREAM_PATH}?token={token} HTTP/1.1\r\nhost: x\r\n\r\n".encode()
    chat = post(LOGIN_PATH, login.encode()) + post(TEXT_PATH, text.encode(), auth) + stream
    chunked_text = (
        f"POST {TEXT_PATH} HTTP/1.1\r\nhost: x\r\n{auth}transfer-encoding: chunked\r\n\r\n"
    ).encode() + chunked
    return [
        chat,
        post(LOGIN_PATH, login.encode()) + chunked_text + stream.replace(b"GET", b"HEAD") + stream,
        b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\nGET //[x HTTP/1.1\r\nhost: x\r\n\r\n",
        post(LOGIN_PATH, b"[" * 200),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gptalk_proto.testing.fuzz {sse,client,server} [libFuzzer args]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in TARGETS:
        names = ",".join(TARGETS)
        print(
            f"usage: python -m gptalk_proto.testing.fuzz {{{names}}} [libFuzzer options] [corpus]",
            file=sys.stderr,
        )
        return 2
    target = args.pop(0)
    try:
        # atheris is an optional extra: imported only when fuzzing.
        import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: PLC0415
    except ImportError:
        print("atheris is not installed: pip install 'gptalk-proto[fuzz]'", file=sys.stderr)
        return 2
    dirs = [arg for arg in args if not arg.startswith("-")]
    if not dirs:
        corpus = tempfile.mkdtemp(prefix=f"gptalk-fuzz-{target}-")
        print(f"corpus: {corpus}", file=sys.stderr)
        args.append(corpus)
        dirs = [corpus]
    first = Path(dirs[0])
    first.mkdir(parents=True, exist_ok=True)
    if not any(first.iterdir()):
        for number, seed in enumerate(seeds(target)):
            (first / f"seed-{number}").write_bytes(seed)
    # Coverage feedback from this package and h11 only (instrumenting all
    # that is loaded costs seconds of start-up for nothing): import both
    # afresh under instrumentation and fuzz the fresh target.
    for name in [m for m in sys.modules if m.split(".")[0] in _INSTRUMENTED]:
        del sys.modules[name]
    with atheris.instrument_imports(include=list(_INSTRUMENTED)):
        fresh = importlib.import_module(__spec__.name if __spec__ else "gptalk_proto.testing.fuzz")
    atheris.Setup([sys.argv[0], *args], fresh.TARGETS[target])
    atheris.Fuzz()
    return 0  # pragma: no cover - atheris.Fuzz() exits the process


if __name__ == "__main__":
    sys.exit(main())
