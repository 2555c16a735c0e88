"""``gptalk record``: record chats into a cassette."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

import anyio

from gptalk_proto.cassette import MIN_SECRET_LENGTH, CassetteError, check_secrets
from gptalk_proto.server import parse_fault

from .._cassettes import save_cassette
from .._session import record_session
from .common import (
    NO_ENV_PROXY_HELP,
    _count,
    _output,
    _port,
    _positive,
    _Printer,
    _proxy_url,
    _read_prompt,
    _url,
    _write,
    refuse_unused,
)
from .exits import UsageError, _add_command, end_line
from .profile import add_profile_argument
from .record_proxy import CHAT_ONLY, LISTEN_ONLY, add_listen_arguments, record_listen

__all__ = ["add_command"]


def _record(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    output = _output(args.output)
    if args.listen:
        return record_listen(args, out, err, output, _write)
    if not args.prompt:
        raise UsageError("give a PROMPT to record (or --listen for a recording proxy)")
    refuse_unused(args, LISTEN_ONLY, "is for --listen only")
    if args.profile != "gptalk":
        raise UsageError(
            f"--profile {args.profile}: this command's own client speaks GPTalk; "
            "record another API's clients with --listen"
        )
    check_secrets(args.secret)  # before anything is recorded: a usage error
    faults = [parse_fault(spec) for spec in args.fault]
    if faults and args.url:
        raise UsageError("--fault is for the built-in server; drop it or --url")
    # As chat's: an empty prompt (an empty stdin, a second -) is refused
    # before anything is recorded over the cassette.
    prompts = [_read_prompt(prompt, stdin) for prompt in args.prompt]
    printer = _Printer(out, err, args.json)
    if args.url is None:
        err.write("gptalk: no --url given; recording against the built-in reference server\n")
    cassette, results = anyio.run(
        lambda: record_session(
            prompts,
            url=args.url,
            faults=faults,
            model=args.model,
            proxy=args.proxy,
            trust_env=not args.no_env_proxy,
            redact=not args.no_redact,
            secrets=args.secret,
            max_events=args.max_events,
            idle_timeout=args.idle_timeout,
            on_event=printer,
        )
    )
    if not cassette.interactions:
        # The server was never reached: no exchange, so no cassette. The
        # failure is the chat's own (a transport error exits 3); nothing is
        # written. Faults the server answered with are exchanges, and kept.
        failed = next((r.error for r in results if r.error is not None), None)
        if failed is not None:
            raise failed
        raise CassetteError("nothing was recorded: no request reached the server")
    _write(output, lambda path: save_cassette(path, cassette))
    end_line(out)
    for result in results:
        if result.error is not None:
            err.write(f"gptalk: chat {result.prompt[:40]!r} ended with: {result.error}\n")
    err.write(f"gptalk: recorded {len(cassette.interactions)} exchanges to {args.output}\n")
    return 0


def add_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the command and its arguments to ``commands``."""
    record = _add_command(
        commands,
        "record",
        "record chats into a cassette",
        "Record one chat per PROMPT into a cassette file, redacting secrets. With no "
        "--url, record against the built-in reference server (with --fault specs).",
    )
    record.add_argument(
        "prompt", metavar="PROMPT", nargs="*", help="a prompt; - reads stdin (none with --listen)"
    )
    record.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="the cassette (its folder must exist)",
    )
    record.add_argument(
        "--url", type=_url, help="the service URL (default: the built-in reference server)"
    )
    record.add_argument(
        "--proxy", type=_proxy_url, help="http://[user:pass@]host:port, socks5:// or socks5h://"
    )
    record.add_argument("--no-env-proxy", action="store_true", help=NO_ENV_PROXY_HELP)
    record.add_argument(
        "--model", default=CHAT_ONLY["--model"], help="the model (default: %(default)s)"
    )
    record.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="a fault for the built-in server (repeat; see serve)",
    )
    record.add_argument("--no-redact", action="store_true", help="keep secrets (unsafe)")
    record.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="TEXT",
        help=f"also redact TEXT, at least {MIN_SECRET_LENGTH} characters (repeat)",
    )
    record.add_argument(
        "--max-events", type=_count, metavar="N", help="end a stream after N events"
    )
    record.add_argument(
        "--idle-timeout", type=_positive, metavar="S", help="end a stream silent for S seconds"
    )
    record.add_argument("--json", action="store_true", help="print events as JSON lines")
    add_listen_arguments(record, _port, _count)
    add_profile_argument(record, recording=True)
    record.set_defaults(handler=_record)
