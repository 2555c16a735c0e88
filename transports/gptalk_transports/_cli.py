"""The ``gptalk`` command: chat, serve (and the cassette tools).

Errors reach the user as one line on stderr and an exit code per kind; never
as a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import ssl
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any, NoReturn, TextIO, cast

import anyio

from gptalk_proto import (
    ChatDone,
    LocalProtocolError,
    TextDelta,
    TextRewritten,
    __version__,
    check_text_value,
)
from gptalk_proto.server import (
    DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_MAX_PENDING_STREAMS,
    DEFAULT_STREAM_TTL,
    FAULT_KINDS,
    parse_fault,
    text_reply,
)

from ._async_client import AsyncClient
from ._cli_exits import (
    EPILOG,
    EXIT_CODES,
    UsageError,
    _add_command,
    _fail,
    _Output,
    _Parser,
    end_line,
)
from ._config import MAX_TIMEOUT, Origin, ProxyURL, Timeout, check_timeout, make_ssl_context
from ._load import DEFAULT_DURATION, LoadReport, run_load
from ._refserver import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MIN_RATE,
    DEFAULT_MIN_RATE_GRACE,
    DEFAULT_REQUEST_TIMEOUT,
    LOGGER_NAME,
    make_service,
    serve,
    serve_in_background,
)

__all__ = ["EXIT_CODES", "main"]

#: The help of --no-env-proxy (chat and record).
NO_ENV_PROXY_HELP = (
    "ignore HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY (used by default when "
    "--url is given and --proxy is not)"
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


def _read_prompt(prompt: str, stdin: TextIO) -> str:
    # From stdin, the line end that ends the input is not part of the prompt.
    text = stdin.read().rstrip("\r\n") if prompt == "-" else prompt
    if not text.strip():
        raise UsageError("the prompt is empty")
    return text


def _timeout(args: argparse.Namespace) -> Timeout:
    return Timeout(connect=args.connect_timeout, read=args.read_timeout, total=args.total_timeout)


def _verify(args: argparse.Namespace) -> bool | ssl.SSLContext:
    if args.insecure:
        return False
    if args.cacert:
        if not Path(args.cacert).is_file():
            raise UsageError(f"--cacert {args.cacert}: no such file")
        # Loaded now: a file that holds no certificate is the user's mistake,
        # found before anything starts.
        try:
            return make_ssl_context(str(args.cacert))
        except (OSError, ssl.SSLError, ValueError) as exc:
            reason = (
                getattr(exc, "reason", None)
                or getattr(exc, "strerror", None)
                or "no certificate in it"
            )
            raise UsageError(f"--cacert {args.cacert}: not a CA bundle ({reason})") from None
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
            AsyncClient(
                url,
                proxy=args.proxy,
                timeout=_timeout(args),
                verify=verify,
                # The built-in server is in this process: no proxy between.
                trust_env=args.url is not None and not args.no_env_proxy,
            )
        )
        async with client.events(messages, model=args.model) as events:
            async for event in events:
                printer(event)
    return 0


async def _load(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    stop = anyio.Event()

    async def on_interrupt(signals: AsyncIterator[int]) -> None:
        async for _ in signals:
            stop.set()  # the run ends at once, and reports what it did
            return

    with ExitStack() as stack:
        # Ctrl-C is caught from before the run starts: it ends the run with
        # its figures so far.  (No signal handler outside the main thread.)
        try:
            signals = stack.enter_context(anyio.open_signal_receiver(signal.SIGINT))
        except (RuntimeError, ValueError, NotImplementedError):
            signals = None
        duration = args.duration
        if duration is None and args.chats is None:
            duration = DEFAULT_DURATION  # --chats alone bounds the run by count, not by the clock
        if args.url is None:
            err.write("gptalk: no --url given; loading the built-in reference server in-process\n")
            err.flush()
        # An error of the run is raised after the task group has exited, so
        # it reaches main() as itself, not wrapped in an ExceptionGroup.
        failure: Exception | None = None
        report: LoadReport | None = None
        async with anyio.create_task_group() as group:
            if signals is not None:
                group.start_soon(on_interrupt, signals)
            try:
                report = await run_load(
                    args.url,
                    concurrency=args.concurrency,
                    duration=duration,
                    chats=args.chats,
                    timeout=_timeout(args),
                    stop=stop,
                )
            except Exception as exc:
                failure = exc
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    assert report is not None
    out.write((json.dumps(report.as_dict()) if args.json else report.format()) + "\n")
    out.flush()
    if report.interrupted:
        err.write("gptalk: interrupted\n")
        return EXIT_CODES["interrupted"]
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
    # The server's log lines (one per internal error) go to stderr as gptalk's.
    log = logging.StreamHandler(err)
    log.setFormatter(logging.Formatter("gptalk: %(message)s"))
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(log)
    try:
        # Signals are caught from before the ready line: a supervisor may stop
        # the server the moment it reads it.
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
                            request_timeout=args.request_timeout,
                            min_rate=args.min_rate,
                            idle_timeout=args.idle_timeout,
                            max_connections=args.max_connections,
                            task_status=task_status,
                        )
                    )
                except OSError as exc:
                    failure = UsageError(
                        f"cannot listen on {args.host}:{args.port}: {exc.strerror}"
                    )
                    group.cancel_scope.cancel()
                else:
                    out.write(f"listening on {url}\n")
                    out.flush()
                    async for _ in signals:
                        group.cancel_scope.cancel()
                        break
    finally:
        logger.removeHandler(log)
    if failure is not None:
        raise failure
    err.write("gptalk: server stopped\n")
    return 0


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    # nan compares false with everything: it would pass "<= 0" and then turn
    # every deadline off; inf would too.
    if not math.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {value!r}")
    return number


def _timeout_seconds(value: str) -> float:
    # The rule Timeout(...) applies (check_timeout): finite, above 0.
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    try:
        checked = check_timeout("", number)
    except LocalProtocolError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds greater than 0 and at most {MAX_TIMEOUT:g}, "
            f"got {value!r}"
        ) from None
    assert checked is not None
    return checked


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return number


def _url(value: str) -> str:
    """A service URL the client can use (checked before anything starts)."""
    try:
        Origin.parse(value)
    except LocalProtocolError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except ValueError as exc:
        # urlsplit's own refusal, for a bracket left open: http://[::1
        raise argparse.ArgumentTypeError(f"not a URL ({exc}): {value!r}") from None
    return value


def _proxy_url(value: str) -> str:
    """A proxy URL (checked before anything starts; the message hides credentials)."""
    try:
        ProxyURL.parse(value)
    except (LocalProtocolError, ValueError):
        raise argparse.ArgumentTypeError(
            "expected a proxy URL like http://host:port or socks5://user:pass@host:port"
        ) from None
    return value


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
    parser = _Parser(
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
    chat.add_argument(
        "--url", type=_url, help="the service URL (default: the built-in reference server)"
    )
    chat.add_argument(
        "--proxy", type=_proxy_url, help="http://[user:pass@]host:port, socks5:// or socks5h://"
    )
    chat.add_argument("--no-env-proxy", action="store_true", help=NO_ENV_PROXY_HELP)
    chat.add_argument("--model", default="gpt-3.5-turbo", help="the model (default: %(default)s)")
    chat.add_argument("--system", metavar="TEXT", help="a system message before the prompt")
    chat.add_argument("--json", action="store_true", help="print events as JSON lines")
    chat.add_argument("--cacert", metavar="FILE", help="trust this CA bundle for TLS")
    chat.add_argument(
        "--insecure", action="store_true", help="do not verify TLS certificates (warns)"
    )
    chat.add_argument(
        "--connect-timeout",
        type=_timeout_seconds,
        default=10.0,
        metavar="S",
        help="seconds to open a connection (default: %(default)s)",
    )
    chat.add_argument(
        "--read-timeout",
        type=_timeout_seconds,
        default=60.0,
        metavar="S",
        help="seconds without a byte before a chat fails (default: %(default)s)",
    )
    chat.add_argument(
        "--total-timeout",
        type=_timeout_seconds,
        default=600.0,
        metavar="S",
        help="seconds for a whole chat, retries included (default: %(default)s)",
    )

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

    load = _add_command(
        commands,
        "load",
        "a bounded load run against a loopback server",
        "Run concurrent chats against a server on a loopback address until "
        "--duration seconds pass or --chats chats have started (--chats alone: "
        "exactly N chats, however long they take), then report chats, "
        "requests and streamed events per second. With no --url, the built-in "
        "reference server runs in-process. Exits 1 if any chat failed.",
    )
    load.add_argument(
        "--url", type=_url, help="a loopback service URL (default: the built-in server)"
    )
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
        metavar="S",
        help=f"seconds during which new chats start (default: {DEFAULT_DURATION:g}, "
        "or none with --chats)",
    )
    load.add_argument("--chats", type=_count, metavar="N", help="stop after N chats")
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    load.add_argument(
        "--connect-timeout",
        type=_timeout_seconds,
        default=5.0,
        metavar="S",
        help="seconds to open a connection (default: %(default)s)",
    )
    load.add_argument(
        "--read-timeout",
        type=_timeout_seconds,
        default=10.0,
        metavar="S",
        help="seconds without a byte before a chat fails (default: %(default)s)",
    )
    load.add_argument(
        "--total-timeout",
        type=_timeout_seconds,
        default=30.0,
        metavar="S",
        help="seconds for a whole chat, retries included (default: %(default)s)",
    )

    for register in _EXTRA_COMMANDS:
        register(commands)
    return parser


#: Subcommand registrars added by other modules (the cassette tools).
_EXTRA_COMMANDS: list[Callable[[Any], None]] = []


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command; return its exit code (``SystemExit`` for argparse errors)."""
    stdin = stdin or sys.stdin
    raw_out = stdout or sys.stdout
    err = stderr or sys.stderr
    for stream in (raw_out, err):
        # A reply the terminal's encoding cannot show is shown escaped, not
        # turned into a crash halfway through.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    out = cast(TextIO, _Output(raw_out))
    parser = build_parser()
    args = parser.parse_args(argv)
    as_json = bool(getattr(args, "json", False))
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
        end_line(out)
        if args.command == "serve":
            # Ctrl-C is how a server in a terminal is stopped: its normal end.
            err.write("gptalk: server stopped\n")
            return EXIT_CODES["ok"]
        err.write("gptalk: interrupted\n")
        return EXIT_CODES["interrupted"]
    except BrokenPipeError:
        return EXIT_CODES["ok"]  # the reader went away (| head): not an error
    except Exception as error:
        _fail(out, err, error, as_json=as_json)


def run() -> NoReturn:
    """The console script's entry point."""
    raise SystemExit(main())


# The cassette commands register themselves on import (they use this module).
from . import _cli_cassette  # noqa: E402, F401
