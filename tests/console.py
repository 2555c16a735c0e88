"""The ``gptalk`` console script, run as a user runs it, for the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["ENV", "GPTALK", "TIMEOUT", "gptalk"]

GPTALK = Path(sys.executable).with_name("gptalk")
#: Seconds any one subprocess may take before the test fails (it is killed).
TIMEOUT = 30.0
# The tests check what the command prints, not how the terminal encodes it.
ENV = {**os.environ, "PYTHONIOENCODING": "utf-8"}


def gptalk(
    *args: str, stdin: str = "", timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run the console script to its end (killed after ``timeout``)."""
    return subprocess.run(
        [str(GPTALK), *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=ENV,
        timeout=timeout,
        check=False,
    )
