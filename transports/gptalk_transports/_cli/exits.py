"""How ``gptalk`` reports an ending: exit codes by kind, the help text that
lists them, one-line usage errors, and error lines (JSON too, with --json)
that start on a line of their own."""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from gptalk_proto import GPTalkError, LocalProtocolError, ProtocolError, ServiceError
from gptalk_proto.cassette import CassetteError

from .._exceptions import TransportError

__all__ = [
    "COMMAND_EXITS",
    "EPILOG",
    "EXIT_CODES",
    "UsageError",
    "end_line",
    "exit_epilog",
]

#: Exit codes by kind of failure (documented in docs/reference/cli.md and in --help).
EXIT_CODES = {
    "ok": 0,
    "usage": 2,  # bad arguments or values (also argparse's own code)
    "network": 3,  # connect, proxy, TLS, timeouts
    "service": 4,  # the service refused: error envelope or HTTP 4xx/5xx
    "protocol": 5,  # the server broke the protocol (bad HTTP, SSE or JSON)
    "cassette": 6,  # a cassette is unreadable or malformed, or a replay left the recorded path
    "check": 1,  # verify or lint found a problem; a load run had failures; steps unplayed
    "internal": 70,  # a bug in gptalk itself (EX_SOFTWARE)
    "interrupted": 130,  # Ctrl-C
}

#: What each exit code means, as the help texts say it.
_EXIT_MEANINGS = {
    "ok": "0 ok",
    "check": (
        "1 check (cassette verify or lint found a problem, chats of a load run failed,"
        " or the replay server stopped with steps unplayed)"
    ),
    "usage": "2 usage",
    "network": "3 network (connect, proxy, TLS, timeout)",
    "service": "4 service (error envelope, HTTP 4xx/5xx)",
    "protocol": "5 protocol (the server broke the protocol)",
    "cassette": "6 cassette (unreadable or malformed, or the replay left the recorded path)",
    "internal": "70 internal error",
    "interrupted": "130 interrupted",
}

#: The exit codes each command can give (its --help lists these, and only
#: these).  Every command can meet a bad command line (2) and a bug (70);
#: every one but serve can be interrupted (130).
COMMAND_EXITS: dict[str, tuple[str, ...]] = {
    "chat": ("ok", "usage", "network", "service", "protocol", "internal", "interrupted"),
    # Ctrl-C (SIGINT) and SIGTERM stop the server: that is its normal end, exit 0.
    "serve": ("ok", "usage", "internal"),
    "load": ("ok", "check", "usage", "internal", "interrupted"),
    # record --listen stopped before any request went through exits 6 (nothing
    # to write: no cassette); so does record when no request reached the server.
    "record": ("ok", "usage", "network", "protocol", "cassette", "internal", "interrupted"),
    # replay --serve stopped by a signal with steps unplayed exits 1.
    "replay": ("ok", "check", "usage", "cassette", "internal", "interrupted"),
    "verify": ("ok", "check", "usage", "cassette", "internal", "interrupted"),
    "lint": ("ok", "check", "usage", "cassette", "internal", "interrupted"),
    "to-har": ("ok", "usage", "cassette", "internal", "interrupted"),
    "rerecord": ("ok", "usage", "internal", "interrupted"),
    "schema": ("ok", "usage", "internal"),
}
_CASSETTE_TOOLS = ("verify", "lint", "to-har", "schema", "rerecord")
COMMAND_EXITS["cassette"] = tuple(
    sorted({name for tool in _CASSETTE_TOOLS for name in COMMAND_EXITS[tool]})
)


def exit_epilog(names: Sequence[str] = tuple(EXIT_CODES)) -> str:
    """The ``exit codes: ...`` paragraph for these kinds of exit, in code order."""
    ordered = sorted(names, key=EXIT_CODES.__getitem__)
    text = "exit codes: " + ", ".join(_EXIT_MEANINGS[name] for name in ordered) + "."
    return textwrap.fill(text, width=72, break_on_hyphens=False) + "\n"


EPILOG = exit_epilog()


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line as one ``gptalk: error:`` line, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CODES["usage"], f"gptalk: error: {message} (see {self.prog} --help)\n")


def _add_command(
    commands: argparse._SubParsersAction[Any],
    name: str,
    help_text: str,
    description: str,
    *,
    exits: Sequence[str] | None = None,
    epilog: str = "",
) -> argparse.ArgumentParser:
    """A subcommand whose epilog lists its exit codes (after ``epilog``), laid
    out as written."""
    codes = exit_epilog(exits if exits is not None else COMMAND_EXITS[name])
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=epilog + codes,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


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


class _Output:
    """Stdout, remembering whether a line is left open (partial reply text),
    so that a message written next starts on a line of its own.

    Not an io class: one of those would flush (and close) the real stdout
    when collected, after a closed pipe too.  Everything but writing is the
    real stream's (``encoding``, ``isatty``...).
    """

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self.line_open = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, text: str) -> int:
        if text:
            self.line_open = not text.endswith("\n")
        return self.inner.write(text)

    def flush(self) -> None:
        self.inner.flush()

    def end_line(self) -> None:
        """End a line left open, before a message on stderr."""
        if self.line_open:
            self.write("\n")
            self.flush()


def end_line(out: TextIO) -> None:
    """End the line partial reply text left open on ``out``, if any."""
    if isinstance(out, _Output):
        out.end_line()


def _fail(out: TextIO, err: TextIO, error: BaseException, *, as_json: bool) -> NoReturn:
    """Report ``error`` as one line on stderr (and, with --json, as a JSON
    line on stdout, where the events went); exit with its code."""
    code = _exit_code(error)
    kind = next(name for name, number in EXIT_CODES.items() if number == code)
    message = str(error)
    if kind == "internal":
        message = f"internal error ({type(error).__name__}: {error}); please report it"
    try:
        end_line(out)
        if as_json:
            record = {"event": "error", "kind": kind, "exit": code, "message": message}
            out.write(json.dumps(record) + "\n")
            out.flush()
    except OSError:
        pass  # stdout is gone (a closed pipe): stderr still says it
    err.write(f"gptalk: error: {message}\n")
    err.flush()
    raise SystemExit(code)
