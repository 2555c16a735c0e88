"""What every part of the benchmark shares: rows, samples, targets."""

from __future__ import annotations

import os
import statistics
from typing import NamedTuple


class Target(NamedTuple):
    """A ratio to reach: ``at_least`` (ours is that many times better) or
    ``at_most`` (ours takes at most that fraction of the peer's time)."""

    value: float
    at_most: bool = False

    def show(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.value:g}"

    def met(self, ratio: float) -> bool:
        return ratio <= self.value if self.at_most else ratio >= self.value

    def margin(self, ratio: float) -> float:
        """How far past the target (above 1) or short of it (below 1)."""
        if self.at_most:
            return self.value / ratio if ratio else float("inf")
        return ratio / self.value


class Row(NamedTuple):
    measure: str
    workload: str
    ours: str
    peer: str
    ratio: float
    target: str
    passed: bool | None
    goal: Target | None = None


class Sample(NamedTuple):
    median: float
    low: float
    high: float

    def show(self, unit: str, scale: float = 1.0) -> str:
        return f"{self.median * scale:.3g} {unit} ({self.low * scale:.3g}-{self.high * scale:.3g})"

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy this figure was."""
        return (self.high - self.low) / self.median if self.median else 0.0


def sample(values: list[float]) -> Sample:
    return Sample(statistics.median(values), min(values), max(values))


def row(  # noqa: PLR0917 (the row's own columns, in order)
    measure: str,
    workload: str,
    ours: str,
    peer: str,
    ratio: float,
    goal: Target | None,
) -> Row:
    """A row; judged when it has a target (the primary peer's rows)."""
    return Row(
        measure,
        workload,
        ours,
        peer,
        ratio,
        goal.show() if goal else "(report)",
        goal.met(ratio) if goal else None,
        goal,
    )


def worst(rows: list[Row]) -> list[Row]:
    """Per measure, the judged row with the smallest margin (the worst cell),
    in the order the measures first appear."""
    found: dict[str, Row] = {}
    for one in rows:
        if one.goal is None:
            continue
        seen = found.get(one.measure)
        if seen is None or one.goal.margin(one.ratio) < seen.goal.margin(seen.ratio):  # type: ignore[union-attr]
            found[one.measure] = one
    return list(found.values())


def process_cpu(pid: int) -> float | None:
    """CPU seconds a process's threads ran so far (Linux's schedstat, in
    nanoseconds: finer than the tick of /proc/PID/stat); None elsewhere, or
    once it is gone."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                total += int(stat.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9
