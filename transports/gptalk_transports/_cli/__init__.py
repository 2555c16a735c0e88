"""The ``gptalk`` command (the console script runs :func:`run`)."""

from .app import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
