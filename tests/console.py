"""The ``gptalk`` console script, run as a user runs it, for the tests."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["ENV", "GPTALK", "LISTENING", "TIMEOUT", "gptalk", "listening", "read_line"]

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


#: The one line a listening command (serve, replay --serve, record --listen)
#: prints first, once it accepts connections.
LISTENING = re.compile(r"listening on (?P<url>http://127\.0\.0\.1:(?P<port>[1-9][0-9]{0,4}))\n")


def read_line(stream: IO[str], timeout: float) -> str:
    """One line from ``stream``, or fail after ``timeout`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True)
    reader.start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line within {timeout} s") from None


@contextmanager
def listening(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 15
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``gptalk ARGS`` in a subprocess, once it printed its ready line (the
    first line on stdout: nothing may come before it); ``(process, url)``.
    ``env`` adds variables to its environment.  Killed when the block ends,
    if still running."""
    process = subprocess.Popen(
        [str(GPTALK), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env={**ENV, **(env or {})},
    )
    try:
        assert process.stdout is not None
        line = read_line(process.stdout, timeout=timeout)
        match = LISTENING.fullmatch(line)
        assert match is not None, f"first stdout line: {line!r}"
        assert 1 <= int(match["port"]) <= 65535
        yield process, match["url"]
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
