"""Reliability probes (issue 15): each race, replay and fault found when wave 1 was probed, tried again.

Every probe is a spec marked ``@pytest.mark.probe("…")`` in tests/ (so `make test` runs them all
the time); this script runs just those, on the real PostgreSQL, Redis and stand-ins the suite uses,
and prints one row per probe: tried (how many cases ran), held, failed.

Run: `make bench-reliability` (MONA_TEST_DATABASE_URL chooses the database).
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


class Probes:
    """Collects the outcome of each probe-marked spec, by the probe's name."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.outcomes: dict[str, dict[str, int]] = defaultdict(lambda: {"tried": 0, "held": 0, "failed": 0})

    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        for item in items:
            marker = item.get_closest_marker("probe")
            if marker is not None:
                self.names[item.nodeid] = str(marker.args[0])

    def pytest_runtest_logreport(self, report: Any) -> None:
        name = self.names.get(report.nodeid)
        if name is None or (report.when != "call" and not report.failed):
            return
        row = self.outcomes[name]
        if report.when == "call" or report.failed:
            row["tried"] += 1
            row["held" if report.passed else "failed"] += 1


def main() -> int:
    probes = Probes()
    started = time.perf_counter()
    code = pytest.main(["-q", "-m", "probe", "-p", "no:cacheprovider", "--no-header", "-rN", str(ROOT / "tests")],
                       plugins=[probes])
    elapsed = time.perf_counter() - started
    print(f"\n{'probe':70} {'tried':>5} {'held':>5} {'failed':>6}")
    for name in sorted(probes.outcomes):
        row = probes.outcomes[name]
        print(f"{name:70} {row['tried']:5d} {row['held']:5d} {row['failed']:6d}")
    total = {k: sum(r[k] for r in probes.outcomes.values()) for k in ("tried", "held", "failed")}
    print(f"{'all ' + str(len(probes.outcomes)) + ' probes':70} {total['tried']:5d} {total['held']:5d} {total['failed']:6d}"
          f"   in {elapsed:.0f} s   (goal: every row held)")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
