"""A count printed by a script run in a fresh interpreter: for what is set
once per process (glibc's malloc thresholds), measured apart from the test
run's own process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def count_in_fresh_interpreter(script: str, mode: str, cache: Path) -> int:
    """Run ``script`` with ``mode`` as its argument; the integer it prints.

    One hash seed for every run: whether the imports alone happen to free a
    large block (which raises malloc's threshold too) depends on it.  And the
    imports come from cached bytecode under ``cache``: compiling a large
    module from source frees such a block (with PYTHONDONTWRITEBYTECODE set,
    as on CI, every run compiled).  The first run fills the cache: run the
    script once before the runs that count."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "PYTHONHASHSEED": "0",
        "PYTHONPYCACHEPREFIX": str(cache),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    found = subprocess.run(
        [sys.executable, "-c", script, mode],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    return int(found.stdout)
