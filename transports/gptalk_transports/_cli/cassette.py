"""``gptalk cassette``: verify, lint, to-har, schema and rerecord."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import anyio

from gptalk_proto.cassette import Cassette, CassetteError, lint, to_har, verify_rechunked

from .._cassettes import CassetteFileError, load_cassette, write_atomically
from .._scenarios import SCENARIOS, record_scenario
from .._schema import cassette_schema
from .._session import ChatResult, replay_session
from .common import (
    _output,
    _write,
)
from .exits import EXIT_CODES, UsageError, _add_command, end_line
from .profile import add_profile_argument, chosen_profile

__all__ = ["CHECK_FAILED", "add_command", "verify_cassette"]


#: Exit code of verify and lint when they find a problem.
CHECK_FAILED = 1


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
            cassette = load_cassette(name)
            profile = chosen_profile(args, cassette)
            if profile.name != "gptalk":
                # Any API: no client of ours to replay it through; every
                # response read back at every split point instead.
                report = verify_rechunked(cassette, profile)
                out.write(
                    f"{name}: ok ({report.exchanges} exchanges, {report.events} events, "
                    f"{report.splits} split points: {report.crlf_splits} inside a CRLF, "
                    f"{report.utf8_splits} inside a UTF-8 character)\n"
                )
                return False
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
        cassette = load_cassette(name)
        findings = lint(cassette, profile=chosen_profile(args, cassette))
        for finding in findings:
            out.write(f"{name}: {finding}\n")
        if not findings:
            out.write(f"{name}: no secrets found\n")
        return bool(findings)

    return _each_file(args.file, out, err, check)


def _to_har(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    output = _output(args.output) if args.output else None
    # The HAR would replace the recording it is made from.
    if (
        output is not None
        and output.exists()
        and Path(args.file).exists()
        and output.samefile(args.file)
    ):
        raise UsageError(f"-o {args.output}: that is the cassette; write the HAR elsewhere")
    cassette = load_cassette(args.file)
    har: dict[str, Any] = to_har(cassette, chosen_profile(args, cassette))
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
    # The folder is made (or found) before anything is recorded: a file by
    # its name is the user's mistake, not an internal error.
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"-o {args.dir}: cannot make the folder: {exc.strerror}") from None
    for name in names:
        try:
            path, _ = anyio.run(record_scenario, name, directory)
        except OSError as exc:
            if exc.filename is None:
                raise  # not the file system's (the scenario's server)
            # A file that cannot be written there (a folder by its name).
            raise UsageError(
                f"-o {args.dir}: cannot write {name}.json: {exc.strerror or exc}"
            ) from None
        out.write(f"recorded {path}\n")
    return 0


def add_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Add the command and its arguments to ``commands``."""
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
        "bytes and in random pieces); under a profile other than gptalk, every "
        "response read back cut at every split point (CRLF and UTF-8 splits "
        "included) and every request matched. Exit 1 if any check fails.",
    )
    verify.add_argument("file", metavar="FILE", nargs="+", help="a cassette (several allowed)")
    add_profile_argument(verify, recording=False)
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
    add_profile_argument(lint_parser, recording=False)
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
    add_profile_argument(har, recording=False)
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
