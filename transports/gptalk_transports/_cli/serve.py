"""``gptalk serve``: run the reference server until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import ssl
import textwrap
from pathlib import Path
from typing import Any, TextIO

import anyio

from gptalk_proto.server import (
    DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_MAX_PENDING_STREAMS,
    DEFAULT_STREAM_TTL,
    FAULT_KINDS,
    parse_fault,
    text_reply,
)

from .._server.refserver import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PARTIAL_BYTES,
    DEFAULT_MIN_RATE,
    DEFAULT_MIN_RATE_GRACE,
    DEFAULT_REQUEST_TIMEOUT,
    make_service,
    serve,
)
from .common import (
    _count,
    _listen_host,
    _port,
    _positive,
    serve_until_stopped,
)
from .exits import (
    UsageError,
    _add_command,
)

__all__ = ["add_command", "run"]


def _fault_epilog() -> str:
    """The fault kinds, for ``serve --help`` (from the core's one table)."""
    width = max(len(kind.spec) for kind in FAULT_KINDS)
    lines = [
        "fault specs: KIND[=VALUE][@ENDPOINT][#N|#N-M|#N+]; ENDPOINT: login, text,",
        "stream or any (default in brackets); #N picks requests to it, counted from 1.",
        "e.g. --fault status=503@text#1 --fault cut=3",
    ]
    for kind in FAULT_KINDS:
        effect = kind.effect.replace("`", "")
        lines += textwrap.wrap(
            f"{kind.spec:<{width}}  {'[' + kind.endpoint + ']':<9}{effect}",
            width=79,
            initial_indent="  ",
            subsequent_indent=" " * (width + 13),
        )
    return "\n".join(lines) + "\n\n"


#: The largest --reply-file read, in bytes: a reply, not a corpus (each event
#: repeats the text so far), and a bound for /dev/zero or an endless pipe,
#: which were read until memory ran out.
MAX_REPLY_FILE_BYTES = 1 << 20


async def _serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    faults = [parse_fault(spec) for spec in args.fault]
    reply = None
    if args.reply_file is not None:
        try:
            with Path(args.reply_file).open("rb") as stream:
                data = stream.read(MAX_REPLY_FILE_BYTES + 1)
            if len(data) > MAX_REPLY_FILE_BYTES:
                raise UsageError(
                    f"--reply-file {args.reply_file}: larger than {MAX_REPLY_FILE_BYTES} bytes"
                )
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--reply-file {args.reply_file}: {exc}") from None
        if not text:
            raise UsageError(f"--reply-file {args.reply_file} is empty")
        reply = text_reply(text)
    ssl_context = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise UsageError("--tls-cert and --tls-key go together")
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load the TLS certificate and key: {exc}") from None
    service = make_service(
        faults=faults,
        token_ttl=args.token_ttl,
        max_pending_bytes=args.max_pending_bytes,
        max_pending_streams=args.max_pending_streams,
        stream_ttl=args.stream_ttl,
    )
    if reply is not None:
        service.reply = reply
    await serve_until_stopped(
        lambda task_status: serve(
            service,
            host=args.host,
            port=args.port,
            ssl_context=ssl_context,
            header_timeout=args.header_timeout,
            request_timeout=args.request_timeout,
            min_rate=args.min_rate,
            idle_timeout=args.idle_timeout,
            max_connections=args.max_connections,
            max_partial_bytes=args.max_partial_bytes,
            task_status=task_status,
        ),
        args,
        out,
        err,
    )
    err.write("gptalk: server stopped\n")
    return 0


def run(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """Run the command (the handler ``main`` calls)."""
    return anyio.run(_serve, args, out, err)


def add_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the command and its arguments to ``commands``."""
    server = _add_command(
        commands,
        "serve",
        "run the reference GPTalk server",
        "Run the reference GPTalk server. Prints one line 'listening on "
        "http(s)://HOST:PORT' once it accepts connections; stops on SIGINT (Ctrl-C) "
        "or SIGTERM, and then exits 0.",
        epilog=_fault_epilog(),
    )
    server.add_argument(
        "--host",
        type=_listen_host,
        default="127.0.0.1",
        help="the address to listen on (default: %(default)s)",
    )
    server.add_argument(
        "--port", type=_port, default=0, help="the port to listen on (default: 0, any free port)"
    )
    server.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate")
    server.add_argument("--tls-key", metavar="FILE", help="the certificate's private key")
    server.add_argument(
        "--fault", action="append", default=[], metavar="SPEC", help="a fault to commit (repeat)"
    )
    server.add_argument("--reply-file", metavar="FILE", help="reply with this file's text")
    server.add_argument(
        "--token-ttl",
        type=_positive,
        default=3600.0,
        metavar="S",
        help="seconds a login token lives (default: %(default)s)",
    )
    server.add_argument(
        "--max-pending-bytes",
        type=_count,
        default=DEFAULT_MAX_PENDING_BYTES,
        metavar="N",
        help="prompt bytes held in all for streams not fetched yet; past it a text "
        "request gets 503 (default: %(default)s)",
    )
    server.add_argument(
        "--max-pending-streams",
        type=_count,
        default=DEFAULT_MAX_PENDING_STREAMS,
        metavar="N",
        help="streams not fetched yet held at once (default: %(default)s)",
    )
    server.add_argument(
        "--stream-ttl",
        type=_positive,
        default=DEFAULT_STREAM_TTL,
        metavar="S",
        help="seconds a stream token waits to be fetched (default: %(default)s)",
    )
    server.add_argument(
        "--header-timeout",
        type=_positive,
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="S",
        help="drop a client slower than this to send a request head (default: %(default)s)",
    )
    server.add_argument(
        "--request-timeout",
        type=_positive,
        default=DEFAULT_REQUEST_TIMEOUT,
        metavar="S",
        help="drop a client slower than this to send a whole request, head and body "
        "(default: %(default)s)",
    )
    server.add_argument(
        "--min-rate",
        type=_positive,
        default=DEFAULT_MIN_RATE,
        metavar="B",
        help=f"after a {DEFAULT_MIN_RATE_GRACE:g} s grace, drop a client whose request "
        "arrives at under B bytes/s on average (default: %(default)s)",
    )
    server.add_argument(
        "--idle-timeout",
        type=_positive,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="S",
        help="drop an idle connection after this (default: %(default)s)",
    )
    server.add_argument(
        "--max-connections",
        type=_count,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="serve at most N connections at once; close the ones past it (default: %(default)s)",
    )
    server.add_argument(
        "--max-partial-bytes",
        type=_count,
        default=DEFAULT_MAX_PARTIAL_BYTES,
        metavar="N",
        help="bytes of requests not yet complete held in all connections; past it the "
        "connections holding the most get 503 and are closed (default: %(default)s)",
    )
    server.set_defaults(handler=run)
