"""Memory stays bounded by the caps, measured in a process of its own."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import gptalk_proto as g

from . import clients
from .hostile_peer import endless_line, hostile_peer

MB = 1024 * 1024

# The client runs in a child process, so its peak resident memory is its own.
# The peak is read from VmHWM, the high-water mark of the child's own address
# space. ru_maxrss would not do: subprocess starts the child with vfork, and
# Linux carries the hiwater mark of the address space replaced by exec (here
# the whole pytest process's) into the child's ru_maxrss.
CHILD = textwrap.dedent(
    """
    import resource, sys
    import gptalk_proto as g
    from gptalk_transports import RetryPolicy
    from tests import clients
    try:
        clients.stream(sys.argv[1], sys.argv[2], "big", retry=RetryPolicy(retries=0))
    except g.SSELineTooLong as exc:
        print("SSELineTooLong", exc.limit)
    else:
        print("no error")
    try:
        with open("/proc/self/status") as status:
            hwm = [line for line in status if line.startswith("VmHWM:")]
        print(int(hwm[0].split()[1]) * 1024)
    except (OSError, IndexError):
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    """
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", clients.KINDS)
def test_a_200_mb_line_is_refused_within_twice_the_cap(kind: str) -> None:
    with hostile_peer(endless_line(200 * MB)) as url:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, kind, url],
            capture_output=True,
            text=True,
            timeout=100,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    verdict, peak = result.stdout.split("\n")[:2]
    assert verdict == f"SSELineTooLong {g.DEFAULT_MAX_LINE_SIZE}"
    assert int(peak) < 2 * g.DEFAULT_MAX_LINE_SIZE + 50 * MB, f"peak {int(peak) / MB:.0f} MB"
