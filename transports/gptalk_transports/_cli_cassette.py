"""The cassette commands of ``gptalk``: record, replay, and cassette verify /
lint / to-har / rerecord."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

import anyio

from gptalk_proto import (
    MIN_SECRET_LENGTH,
    Cassette,
    CassetteError,
    ChatEvent,
    check_secrets,
    lint,
    parse_fault,
    to_har,
)

from ._cassettes import ReplayTiming, load_cassette, save_cassette
from ._cli import _EXTRA_COMMANDS, UsageError, _add_command, _positive, _Printer
from ._scenarios import SCENARIOS, record_scenario
from ._session import ChatResult, record_session, replay_session

__all__ = ["CHECK_FAILED", "verify_cassette"]

#: Exit code of verify and lint when they find a problem.
CHECK_FAILED = 1


def _record(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    check_secrets(args.secret)  # before anything is recorded: a usage error
    faults = [parse_fault(spec) for spec in args.fault]
    if faults and args.url:
        raise UsageError("--fault is for the built-in server; drop it or --url")
    prompts = [stdin.read().rstrip("\r\n") if p == "-" else p for p in args.prompt]
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
    save_cassette(args.output, cassette)
    for result in results:
        if result.error is not None:
            err.write(f"gptalk: chat {result.prompt[:40]!r} ended with: {result.error}\n")
    err.write(f"gptalk: recorded {len(cassette.interactions)} exchanges to {args.output}\n")
    return 0


def _replay(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    cassette = load_cassette(args.file)
    timing = ReplayTiming(speed=args.speed or None, max_gap=args.max_gap)
    printer = _Printer(out, err, args.json)

    def show(event: ChatEvent) -> None:
        printer(event)

    results = anyio.run(lambda: replay_session(cassette, timing=timing, on_event=show))
    for result in results:
        if result.error is not None:
            err.write(f"gptalk: the recorded chat ended with: {result.error}\n")
    return 0


def verify_cassette(path: str | Path) -> tuple[Cassette, list[ChatResult]]:
    """Load (schema and re-parse checks), then replay through the client as
    recorded, in single bytes and in random pieces; the chats must agree."""
    cassette = load_cassette(path)
    results = anyio.run(lambda: replay_session(cassette))
    for rechunk in ("bytes", 1):
        again = anyio.run(lambda: replay_session(cassette, rechunk=rechunk))  # noqa: B023
        if [(r.text, type(r.error)) for r in again] != [(r.text, type(r.error)) for r in results]:
            raise CassetteError(f"replayed in pieces ({rechunk!r}), the chats differ")
    return cassette, results


def _verify(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    failed = False
    for name in args.file:
        try:
            cassette, results = verify_cassette(name)
        except CassetteError as error:
            failed = True
            out.write(f"{name}: FAILED: {error}\n")
            continue
        events = sum(len(item.response.events) for item in cassette.interactions)
        out.write(
            f"{name}: ok ({len(cassette.interactions)} exchanges, {len(results)} chats, "
            f"{events} events)\n"
        )
    return CHECK_FAILED if failed else 0


def _lint(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    failed = False
    for name in args.file:
        findings = lint(load_cassette(name))
        for finding in findings:
            out.write(f"{name}: {finding}\n")
        if findings:
            failed = True
        else:
            out.write(f"{name}: no secrets found\n")
    return CHECK_FAILED if failed else 0


def _to_har(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    har: dict[str, Any] = to_har(load_cassette(args.file))
    text = json.dumps(har, ensure_ascii=False, indent=1) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        out.write(text)
    return 0


def _rerecord(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    directory = Path(args.directory)
    names = args.only or list(SCENARIOS)
    for name in names:
        if name not in SCENARIOS:
            raise UsageError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})")
    for name in names:
        path, _ = anyio.run(record_scenario, name, directory)
        out.write(f"recorded {path}\n")
    return 0


def _register(commands: Any) -> None:
    record = _add_command(
        commands,
        "record",
        "record chats into a cassette",
        "Record one chat per PROMPT into a cassette file, redacting secrets. With no "
        "--url, record against the built-in reference server (with --fault specs).",
    )
    record.add_argument("prompt", metavar="PROMPT", nargs="+", help="a prompt; - reads stdin")
    record.add_argument("-o", "--output", required=True, metavar="FILE", help="the cassette")
    record.add_argument("--url", help="the service URL (default: the built-in reference server)")
    record.add_argument("--proxy", help="http://[user:pass@]host:port, socks5:// or socks5h://")
    record.add_argument("--model", default="gpt-3.5-turbo", help="the model (default: %(default)s)")
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
    record.add_argument("--max-events", type=int, metavar="N", help="end a stream after N events")
    record.add_argument(
        "--idle-timeout", type=_positive, metavar="S", help="end a stream silent for S seconds"
    )
    record.add_argument("--json", action="store_true", help="print events as JSON lines")
    record.set_defaults(handler=_record)

    replay = _add_command(
        commands,
        "replay",
        "replay a cassette offline",
        "Replay the chats of a cassette offline, printing the text as it streams.",
    )
    replay.add_argument("file", metavar="FILE", help="the cassette")
    replay.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="1 as recorded (default), 2 twice as fast, 0 at once",
    )
    replay.add_argument("--max-gap", type=_positive, metavar="S", help="cap any wait at S seconds")
    replay.add_argument("--json", action="store_true", help="print events as JSON lines")
    replay.set_defaults(handler=_replay)

    cassette = _add_command(
        commands, "cassette", "check and convert cassettes", "Check and convert cassettes."
    )
    tools = cassette.add_subparsers(dest="tool", required=True, metavar="TOOL")
    verify = _add_command(
        tools,
        "verify",
        "schema, re-parse, and replay through the client",
        "Check each cassette: its schema, its chunks parsed again against its "
        "events, and a replay of its chats through the client (as recorded, in single "
        "bytes and in random pieces). Exit 1 if any check fails.",
    )
    verify.add_argument("file", metavar="FILE", nargs="+", help="a cassette (several allowed)")
    verify.set_defaults(handler=_verify)
    lint_parser = _add_command(
        tools,
        "lint",
        "find what still looks like a secret",
        "Report long hex or base64 runs, JWT shapes, bearer values and query "
        "values of the URL that are not placeholders, and pieces of a secret left "
        "where the same words lead up to a placeholder elsewhere (cut by a stream). "
        "Exit 1 if anything is found.",
    )
    lint_parser.add_argument("file", metavar="FILE", nargs="+", help="a cassette (several allowed)")
    lint_parser.set_defaults(handler=_lint)
    har = _add_command(
        tools,
        "to-har",
        "export as HAR 1.2",
        "Export a cassette as HAR 1.2 (chunks and events in _chunks and _events).",
    )
    har.add_argument("file", metavar="FILE", help="the cassette")
    har.add_argument("-o", "--output", metavar="OUT", help="write here (default: stdout)")
    har.set_defaults(handler=_to_har)
    rerecord = _add_command(
        tools,
        "rerecord",
        "record the shipped scenarios again",
        "Record every shipped scenario again from the reference server: "
        + ", ".join(SCENARIOS)
        + ".",
    )
    rerecord.add_argument(
        "directory", nargs="?", default="cassettes", help="where to write (default: cassettes)"
    )
    rerecord.add_argument(
        "--only", action="append", metavar="NAME", help="just this scenario (repeat)"
    )
    rerecord.set_defaults(handler=_rerecord)


_EXTRA_COMMANDS.append(_register)
