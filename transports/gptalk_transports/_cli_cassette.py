"""The cassette commands of ``gptalk``: record, replay, and cassette verify /
lint / to-har / schema / rerecord."""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import anyio

from gptalk_proto import ChatEvent
from gptalk_proto.cassette import (
    MIN_SECRET_LENGTH,
    Cassette,
    CassetteError,
    check_secrets,
    lint,
    to_har,
)
from gptalk_proto.server import parse_fault

from ._cassettes import (
    CassetteFileError,
    ReplayTiming,
    load_cassette,
    save_cassette,
    write_atomically,
)
from ._cli import (
    _EXTRA_COMMANDS,
    NO_ENV_PROXY_HELP,
    _count,
    _positive,
    _Printer,
    _proxy_url,
    _url,
)
from ._cli_exits import EXIT_CODES, UsageError, _add_command, end_line
from ._scenarios import SCENARIOS, record_scenario
from ._schema import cassette_schema
from ._session import ChatResult, record_session, replay_session

__all__ = ["CHECK_FAILED", "verify_cassette"]

#: Exit code of verify and lint when they find a problem.
CHECK_FAILED = 1

#: The slowest replay --speed: a thousand times slower than recorded.  Slower
#: would turn the longest recorded gap into waits of years (or infinity).
MIN_SPEED = 0.001


def _speed(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or 0 < number < MIN_SPEED:
        raise argparse.ArgumentTypeError(f"expected 0 (at once) or a speed from {MIN_SPEED:g} up")
    return number


def _output(name: str) -> Path:
    """Where ``-o`` says to write: refused before any work if it cannot be.

    The folder must exist (no folder is created behind the user's back) and
    the name must not be a folder.
    """
    path = Path(name)
    if path.is_dir():
        raise UsageError(f"-o {name}: is a directory; give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"-o {name}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"-o {name}: cannot write in the folder {folder}")
    return path


def _write(path: Path, write: Callable[[Path], None]) -> None:
    # A failure at the very end (a full disk, a race) is still about -o.
    try:
        write(path)
    except OSError as exc:
        raise UsageError(f"-o {path}: cannot write it: {exc.strerror or exc}") from None


def _record(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    output = _output(args.output)
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


def _replay(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    try:
        timing = ReplayTiming(speed=args.speed or None, max_gap=args.max_gap)
    except ValueError as exc:
        raise UsageError(f"--max-gap: {exc}") from None
    cassette = load_cassette(args.file)
    printer = _Printer(out, err, args.json)

    def show(event: ChatEvent) -> None:
        printer(event)

    results = anyio.run(lambda: replay_session(cassette, timing=timing, on_event=show))
    end_line(out)
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


def _each_file(names: list[str], out: TextIO, err: TextIO, check: Callable[[str], bool]) -> int:
    """Run ``check`` (True: it found a problem) on every file.  A file that
    cannot be read or loaded is an error (exit 6, as from every command); the
    other files are still checked."""
    failed = broken = False
    for name in names:
        try:
            failed |= check(name)
        except CassetteError as error:
            broken = True
            end_line(out)
            err.write(f"gptalk: error: {error}\n")
    if broken:
        return EXIT_CODES["cassette"]
    return CHECK_FAILED if failed else 0


def _verify(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    def check(name: str) -> bool:
        try:
            cassette, results = verify_cassette(name)
        except CassetteFileError:
            raise
        except CassetteError as error:
            # What verify is for: a malformed cassette is a failed check.
            out.write(f"{name}: FAILED: {str(error).removeprefix(f'{name}: ')}\n")
            return True
        events = sum(len(item.response.events) for item in cassette.interactions)
        out.write(
            f"{name}: ok ({len(cassette.interactions)} exchanges, {len(results)} chats, "
            f"{events} events)\n"
        )
        return False

    return _each_file(args.file, out, err, check)


def _lint(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    def check(name: str) -> bool:
        findings = lint(load_cassette(name))
        for finding in findings:
            out.write(f"{name}: {finding}\n")
        if not findings:
            out.write(f"{name}: no secrets found\n")
        return bool(findings)

    return _each_file(args.file, out, err, check)


def _to_har(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    output = _output(args.output) if args.output else None
    har: dict[str, Any] = to_har(load_cassette(args.file))
    text = json.dumps(har, ensure_ascii=False, indent=1) + "\n"
    if output is not None:
        _write(output, lambda path: write_atomically(path, text))
    else:
        out.write(text)
    return 0


def _schema(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    out.write(cassette_schema())
    return 0


def _rerecord(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    directory = Path(args.dir)
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
    record.add_argument(
        "--max-events", type=_count, metavar="N", help="end a stream after N events"
    )
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
        type=_speed,
        default=1.0,
        metavar="X",
        help=f"1 as recorded (default), 2 twice as fast, 0 at once; at least {MIN_SPEED:g}",
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
    har.add_argument(
        "-o", "--output", metavar="OUT", help="write here (default: stdout; its folder must exist)"
    )
    har.set_defaults(handler=_to_har)
    schema = _add_command(
        tools,
        "schema",
        "print the cassette format's JSON Schema",
        "Print the JSON Schema (2020-12) of the cassette format, shipped in the package.",
    )
    schema.set_defaults(handler=_schema)
    rerecord = _add_command(
        tools,
        "rerecord",
        "record the shipped scenarios again",
        "Record every shipped scenario again from the reference server: "
        + ", ".join(SCENARIOS)
        + ".",
    )
    # No default: an installed command must not write into whatever directory
    # a user happens to be in.
    rerecord.add_argument(
        "-o",
        "--dir",
        required=True,
        metavar="DIR",
        help="where to write DIR/NAME.json (the project's own: cassettes)",
    )
    rerecord.add_argument(
        "--only", action="append", metavar="NAME", help="just this scenario (repeat)"
    )
    rerecord.set_defaults(handler=_rerecord)


_EXTRA_COMMANDS.append(_register)
