"""The ``gptalk`` command: chat, serve (and the cassette tools).

Errors reach the user as one line on stderr and an exit code per kind; never
as a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import ssl
import sys
import textwrap
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, NoReturn, TextIO

import anyio

from gptalk_proto import (
    DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_MAX_PENDING_STREAMS,
    DEFAULT_STREAM_TTL,
    FAULT_KINDS,
    CassetteError,
    ChatDone,
    GPTalkError,
    LocalProtocolError,
    ProtocolError,
    ServiceError,
    TextDelta,
    TextRewritten,
    __version__,
    parse_fault,
    text_reply,
)
from gptalk_proto._util import check_text_value

from ._async_client import AsyncClient
from ._config import Timeout
from ._exceptions import TransportError
from ._load import run_load
from ._refserver import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    make_service,
    serve,
    serve_in_background,
)

__all__ = ["EXIT_CODES", "main"]

#: Exit codes by kind of failure (documented in the README and in --help).
EXIT_CODES = {
    "ok": 0,
    "usage": 2,  # bad arguments or values (also argparse's own code)
    "network": 3,  # connect, proxy, TLS, timeouts
    "service": 4,  # the service refused: error envelope or HTTP 4xx/5xx
    "protocol": 5,  # the server broke the protocol (bad HTTP, SSE or JSON)
    "cassette": 6,  # a cassette is malformed, or a replay left the recorded path
    "check": 1,  # cassette verify or lint found a problem; a load run had failures
    "internal": 70,  # a bug in gptalk itself (EX_SOFTWARE)
    "interrupted": 130,  # Ctrl-C
}

EPILOG = """\
exit codes: 0 ok, 1 check (cassette verify or lint found a problem, or
chats of a load run failed), 2 usage, 3 network (connect, proxy, TLS,
timeout), 4 service (error envelope, HTTP 4xx/5xx), 5 protocol (the
server broke the protocol), 6 cassette (malformed, or the replay left
the recorded path), 70 internal error, 130 interrupted.
"""


def _add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    description: str,
    *,
    epilog: str = EPILOG,
) -> argparse.ArgumentParser:
    """A subcommand with the shared epilog (exit codes), laid out as written."""
    return commands.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


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


class UsageError(Exception):
    """A bad argument value, reported like argparse's own errors."""


def _exit_code(error: BaseException) -> int:
    if isinstance(error, (UsageError, LocalProtocolError)):
        return EXIT_CODES["usage"]
    if isinstance(error, CassetteError):
        return EXIT_CODES["cassette"]
    if isinstance(error, TransportError):
        return EXIT_CODES["network"]
    if isinstance(error, ServiceError):
        return EXIT_CODES["service"]
    if isinstance(error, (ProtocolError, GPTalkError)):
        return EXIT_CODES["protocol"]
    return EXIT_CODES["internal"]


def _read_prompt(prompt: str, stdin: TextIO) -> str:
    # From stdin, the line end that ends the input is not part of the prompt.
    text = stdin.read().rstrip("\r\n") if prompt == "-" else prompt
    if not text.strip():
        raise UsageError("the prompt is empty")
    return text


def _timeout(args: argparse.Namespace) -> Timeout:
    return Timeout(connect=args.connect_timeout, read=args.read_timeout, total=args.total_timeout)


def _verify(args: argparse.Namespace) -> bool | str:
    if args.insecure:
        return False
    if args.cacert:
        if not Path(args.cacert).is_file():
            raise UsageError(f"--cacert {args.cacert}: no such file")
        return str(args.cacert)
    return True


class _Printer:
    """Writes a chat's events to stdout as text or JSON lines."""

    def __init__(self, out: TextIO, err: TextIO, as_json: bool) -> None:
        self.out = out
        self.err = err
        self.as_json = as_json
        # JSON lines stay exact on a terminal that is not UTF-8: escape instead.
        encoding = (getattr(out, "encoding", None) or "utf-8").lower().replace("_", "-")
        self.ascii_only = encoding not in ("utf-8", "utf8")

    def __call__(self, event: object) -> None:
        if self.as_json:
            record: dict[str, Any] | None = None
            if isinstance(event, TextDelta):
                record = {"event": "delta", "text": event.text}
            elif isinstance(event, TextRewritten):
                record = {"event": "rewrite", "text": event.text, "previous": event.previous}
            elif isinstance(event, ChatDone):
                record = {"event": "done", "text": event.text}
            if record is not None:
                self.out.write(json.dumps(record, ensure_ascii=self.ascii_only) + "\n")
                self.out.flush()
            return
        if isinstance(event, TextDelta):
            self.out.write(event.text)
        elif isinstance(event, TextRewritten):
            self.err.write("\ngptalk: the service rewrote its reply; the whole new text follows\n")
            self.out.write("\n" + event.text)
        elif isinstance(event, ChatDone):
            self.out.write("\n")
        self.out.flush()


async def _chat(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    prompt = _read_prompt(args.prompt, stdin)
    # Refuse bad values before anything starts (the built-in server included).
    check_text_value("--model", args.model)
    verify = _verify(args)
    messages = [{"role": "user", "content": prompt}]
    if args.system:
        messages.insert(0, {"role": "system", "content": args.system})
    printer = _Printer(out, err, args.json)
    async with AsyncExitStack() as stack:
        url = args.url
        if url is None:
            url = await stack.enter_async_context(serve_in_background())
            err.write(f"gptalk: no --url given; using the built-in reference server at {url}\n")
            err.flush()
        client = await stack.enter_async_context(
            AsyncClient(url, proxy=args.proxy, timeout=_timeout(args), verify=verify)
        )
        async with client.events(messages, model=args.model) as events:
            async for event in events:
                printer(event)
    return 0


async def _load(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.url is None:
        err.write("gptalk: no --url given; loading the built-in reference server in-process\n")
        err.flush()
    report = await run_load(
        args.url,
        concurrency=args.concurrency,
        duration=args.duration,
        chats=args.chats,
        timeout=_timeout(args),
    )
    out.write((json.dumps(report.as_dict()) if args.json else report.format()) + "\n")
    out.flush()
    return EXIT_CODES["check"] if report.failed else EXIT_CODES["ok"]


async def _serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    faults = [parse_fault(spec) for spec in args.fault]
    reply = None
    if args.reply_file is not None:
        try:
            text = Path(args.reply_file).read_text(encoding="utf-8")
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
    # Errors found inside the task group are raised after it has exited, so
    # they reach main() as themselves, not wrapped in an ExceptionGroup.
    failure: UsageError | None = None
    # Signals are caught from before the ready line: a supervisor may stop the
    # server the moment it reads it.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as group:
            try:
                url = await group.start(
                    lambda task_status: serve(
                        service,
                        host=args.host,
                        port=args.port,
                        ssl_context=ssl_context,
                        header_timeout=args.header_timeout,
                        idle_timeout=args.idle_timeout,
                        task_status=task_status,
                    )
                )
            except OSError as exc:
                failure = UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}")
                group.cancel_scope.cancel()
            else:
                out.write(f"listening on {url}\n")
                out.flush()
                async for _ in signals:
                    group.cancel_scope.cancel()
                    break
    if failure is not None:
        raise failure
    err.write("gptalk: server stopped\n")
    return 0


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError("expected a positive number")
    return number


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("expected a positive whole number")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError("expected a port from 0 to 65535")
    return number


def build_parser() -> argparse.ArgumentParser:
    """The whole command line (its --help texts are checked against the README)."""
    parser = argparse.ArgumentParser(
        prog="gptalk",
        description="GPTalk chat-streaming protocol toolkit: chat, serve, record and replay.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gptalk {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = _add_command(
        commands,
        "chat",
        "stream a reply to stdout",
        "Stream the reply to PROMPT to stdout as it arrives. With no --url, "
        "start the built-in reference server in-process and chat with it.",
    )
    chat.add_argument("prompt", metavar="PROMPT", help="the prompt; - reads it from stdin")
    chat.add_argument("--url", help="the service URL (default: the built-in reference server)")
    chat.add_argument("--proxy", help="http://[user:pass@]host:port, socks5:// or socks5h://")
    chat.add_argument("--model", default="gpt-3.5-turbo", help="the model (default: %(default)s)")
    chat.add_argument("--system", metavar="TEXT", help="a system message before the prompt")
    chat.add_argument("--json", action="store_true", help="print events as JSON lines")
    chat.add_argument("--cacert", metavar="FILE", help="trust this CA bundle for TLS")
    chat.add_argument(
        "--insecure", action="store_true", help="do not verify TLS certificates (warns)"
    )
    chat.add_argument(
        "--connect-timeout",
        type=_positive,
        default=10.0,
        metavar="S",
        help="seconds to open a connection (default: %(default)s)",
    )
    chat.add_argument(
        "--read-timeout",
        type=_positive,
        default=60.0,
        metavar="S",
        help="seconds without a byte before a chat fails (default: %(default)s)",
    )
    chat.add_argument(
        "--total-timeout",
        type=_positive,
        default=600.0,
        metavar="S",
        help="seconds for a whole chat, retries included (default: %(default)s)",
    )

    server = _add_command(
        commands,
        "serve",
        "run the reference GPTalk server",
        "Run the reference GPTalk server. Prints one line 'listening on "
        "http(s)://HOST:PORT' once it accepts connections; stops on SIGINT or SIGTERM.",
        epilog=_fault_epilog() + EPILOG,
    )
    server.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default: %(default)s)"
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
        "--idle-timeout",
        type=_positive,
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="S",
        help="drop an idle connection after this (default: %(default)s)",
    )

    load = _add_command(
        commands,
        "load",
        "a bounded load run against a loopback server",
        "Run concurrent chats against a server on a loopback address until "
        "--duration seconds pass or --chats chats have started, then report chats, "
        "requests and streamed events per second. With no --url, the built-in "
        "reference server runs in-process. Exits 1 if any chat failed.",
    )
    load.add_argument("--url", help="a loopback service URL (default: the built-in server)")
    load.add_argument(
        "--concurrency",
        type=_count,
        default=20,
        metavar="N",
        help="chats running at once (default: %(default)s)",
    )
    load.add_argument(
        "--duration",
        type=_positive,
        default=3.0,
        metavar="S",
        help="seconds during which new chats start (default: %(default)s)",
    )
    load.add_argument("--chats", type=_count, metavar="N", help="stop after N chats")
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    load.add_argument(
        "--connect-timeout",
        type=_positive,
        default=5.0,
        metavar="S",
        help="seconds to open a connection (default: %(default)s)",
    )
    load.add_argument(
        "--read-timeout",
        type=_positive,
        default=10.0,
        metavar="S",
        help="seconds without a byte before a chat fails (default: %(default)s)",
    )
    load.add_argument(
        "--total-timeout",
        type=_positive,
        default=30.0,
        metavar="S",
        help="seconds for a whole chat, retries included (default: %(default)s)",
    )

    for register in _EXTRA_COMMANDS:
        register(commands)
    return parser


#: Subcommand registrars added by other modules (the cassette tools).
_EXTRA_COMMANDS: list[Callable[[Any], None]] = []


def _fail(err: TextIO, message: str, code: int) -> NoReturn:
    err.write(f"gptalk: error: {message}\n")
    err.flush()
    raise SystemExit(code)


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command; return its exit code (``SystemExit`` for argparse errors)."""
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    for stream in (out, err):
        # A reply the terminal's encoding cannot show is shown escaped, not
        # turned into a crash halfway through.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "chat":
            return anyio.run(_chat, args, stdin, out, err)
        if args.command == "serve":
            return anyio.run(_serve, args, out, err)
        if args.command == "load":
            return anyio.run(_load, args, out, err)
        handler: Callable[[argparse.Namespace, TextIO, TextIO, TextIO], int] = args.handler
        return handler(args, stdin, out, err)
    except KeyboardInterrupt:
        err.write("gptalk: interrupted\n")
        return EXIT_CODES["interrupted"]
    except BrokenPipeError:
        return EXIT_CODES["ok"]  # the reader went away (| head): not an error
    except (UsageError, GPTalkError) as error:
        _fail(err, str(error), _exit_code(error))
    except Exception as error:
        _fail(
            err,
            f"internal error ({type(error).__name__}: {error}); please report it",
            EXIT_CODES["internal"],
        )


def run() -> NoReturn:
    """The console script's entry point."""
    raise SystemExit(main())


# The cassette commands register themselves on import (they use this module).
from . import _cli_cassette  # noqa: E402, F401
