"""A count printed by a script run in a fresh interpreter: for what is set
once per process (glibc's malloc thresholds), measured apart from the test
run's own process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: Run first in the fresh interpreter, on Linux: no transparent huge pages for
#: it (PR_SET_THP_DISABLE, 41).  With THP "always", a fault in a 2 MiB-aligned
#: range that the heap happens to cover whole maps all of it at once: where the
#: randomized heap lands decides whether a freed-and-remade block faults some
#: 250 times or about 15 (one CI run counted 3,151 faults for 200 cycles where
#: every other run counts 52,189).
_NO_HUGE_PAGES = (
    "import ctypes, sys\n"
    "if sys.platform == 'linux':\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(41, 1, 0, 0, 0)\n"
)


def count_in_fresh_interpreter(script: str, mode: str, cache: Path) -> int:
    """Run ``script`` with ``mode`` as its argument; the integer it prints.

    One hash seed for every run: whether the imports alone happen to free a
    large block (which raises malloc's threshold too) depends on it.  And the
    imports come from cached bytecode under ``cache``: compiling a large
    module from source frees such a block (with PYTHONDONTWRITEBYTECODE set,
    as on CI, every run compiled).  The first run fills the cache: run the
    script once before the runs that count.  Transparent huge pages are off
    for it (see _NO_HUGE_PAGES)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "PYTHONHASHSEED": "0",
        "PYTHONPYCACHEPREFIX": str(cache),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    found = subprocess.run(
        [sys.executable, "-c", _NO_HUGE_PAGES + script, mode],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    return int(found.stdout)
