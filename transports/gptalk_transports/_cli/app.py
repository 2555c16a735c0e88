"""The ``gptalk`` command line: the parser and the entry point.

Each command lives in its own module (chat, serve, load, record, replay,
cassette).  Errors reach the user as one line on stderr and an exit code per
kind; never as a traceback."""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO, cast

from gptalk_proto import __version__

from . import cassette, chat, load, record, replay, serve
from .exits import EPILOG, EXIT_CODES, _fail, _Output, _Parser, end_line

__all__ = ["EXIT_CODES", "build_parser", "main", "run"]


#: The commands, in ``gptalk --help``'s order: each module adds its own
#: arguments and handler (explicit imports: no registration by side effect).
COMMANDS = (chat, serve, load, record, replay, cassette)


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

    for command in COMMANDS:
        command.add_command(commands)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command; return its exit code (``SystemExit`` for argparse errors)."""
    # A stdin the shell closed (<&-) is None in Python: it reads as empty
    # ("the prompt is empty" for a prompt of -).
    stdin = stdin or sys.stdin or io.StringIO()
    raw_out = stdout or sys.stdout
    # A stderr the shell closed (2>&-) is None in Python: the messages go
    # nowhere, as the user asked, and the exit code still says how it ended.
    err = stderr or sys.stderr or open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    for stream in (raw_out, err):
        # A reply the terminal's encoding cannot show is shown escaped, not
        # turned into a crash halfway through.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    out = cast(TextIO, _Output(raw_out))
    parser = build_parser()
    args = parser.parse_args(argv)
    if raw_out is None:
        # A stdout the shell closed (>&-): the command would fail at its first
        # write, after its work (a chat sent, a cassette half recorded).
        err.write("gptalk: error: stdout is closed; redirect it to a file or /dev/null\n")
        return EXIT_CODES["usage"]
    as_json = bool(getattr(args, "json", False))
    try:
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
