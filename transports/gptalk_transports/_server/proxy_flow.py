"""The recording proxy's wait for the rest of an answer once its client is
done (see ``_proxy_one``): an idle wait, not a total one."""

from __future__ import annotations

import anyio

from gptalk_proto.cassette import ProxyConnection

__all__ = ["while_it_flows"]


async def while_it_flows(done: anyio.Event, conn: ProxyConnection, idle: float) -> None:
    """Wait for ``done`` (the upstream's answer passed on whole) while the
    answer flows: until a whole ``idle`` seconds go by without an upstream
    read passed on.  An idle wait, not a total one: a long stream still
    coming steadily is not cut at ``idle``; a silent upstream is let go
    after ``idle`` to ``2 * idle`` seconds of silence (the windows are
    checked at their ends: no clock read per upstream read)."""
    while not done.is_set():
        reads = conn.upstream_reads
        with anyio.move_on_after(idle):
            await done.wait()
        if conn.upstream_reads == reads:
            return
