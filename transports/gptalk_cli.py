"""The ``gptalk`` console script's entry point, a module of its own beside
the ``gptalk_transports`` package.

Why outside it: a console script imports its function's module first, and
``gptalk_transports._cli`` brings in the whole package (about a third of a
second).  A Ctrl-C in that time reached the user as a ``KeyboardInterrupt``
traceback from the imports, before the command's own handling of an
interruption began.  Here the import is what is guarded: the command ends
as any interrupted command does ("gptalk: interrupted", exit 130).
"""

from __future__ import annotations

import sys
from typing import NoReturn

__all__ = ["run"]

#: The exit code of an interrupted command (the CLI's "interrupted").
INTERRUPTED = 130


def run() -> NoReturn:
    """Import the command and run it (see ``gptalk_transports._cli.run``)."""
    try:
        from gptalk_transports._cli import run as command  # noqa: PLC0415 (guarded, see above)
    except KeyboardInterrupt:
        if sys.stderr is not None:  # (a stderr the shell closed is None)
            sys.stderr.write("gptalk: interrupted\n")
        raise SystemExit(INTERRUPTED) from None
    command()
