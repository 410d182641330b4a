"""`make bench` in miniature: every measurement runs and lands in the table and the JSON.
No figure is asserted; speed is shown by `make bench`, never by a timed test."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path


async def test_a_tiny_bench_reports_every_measurement(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.run",
        "--create-count=8",
        "--paid-count=3",
        "--refund-count=3",
        "--rates=20",
        "--rate-seconds=1",
        "--polling-count=2",
        "--day-seconds=6",
        "--capacity=20",
        "--capacity-timer=2",
        "--recon-count=300",
        "--recon-page-size=50",
        "--recon-naive-sample=50",
        "--quiet-seconds=1",
        f"--results-dir={tmp_path}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    assert process.returncode == 0, output
    for label in (
        "create, concurrency 1",
        "create, concurrency 20",
        "time to paid",
        "invoice.paid at the merchant (webhook in -> merchant has it)",
        "goal p99 < 250.0 ms",
        "provider calls / invoice, webhook path",
        "refund create (POST /invoices/{id}/refunds)",
        "refund processed -> API shows it",
        "webhook ACK at 20/s",
        "highest rate held",
        "provider calls / invoice, polling only, 24 h",
        "capacity: 20 open invoices",
        "timers fired on time",
        "reconcile 300 Paystack transactions",
        "naive: verify each invoice, one call at a time",
    ):
        assert label in output, output
    assert "20/20 sampled fired" in output
    # It says what it is doing as it goes: phases, counts, elapsed seconds.
    done = re.findall(
        r"^\[\s*[\d.]+s\] (\d+) creates, \d+ at once: done \((\d+)/(\d+)\)$", output, re.M
    )
    assert done and all(count == made == total for count, made, total in done), output
    assert re.search(r"^\[\s*[\d.]+s\] capacity…$", output, re.M), output
    [saved] = tmp_path.glob("bench-*.json")
    report = json.loads(saved.read_text())
    assert report["cpu_count"] >= 1 and "temporalio" in report["packages"]
    assert report["figures"]["capacity"]["fired"] == 20
    # The seeded window is clean: every record matched, nothing flagged.
    recon = report["figures"]["reconciliation"]
    assert recon["records"] == recon["matched"] == 300 and recon["counts"] == {}
    assert recon["paystack_calls"]["list"] == 6
    assert report["figures"]["calls_webhook_path"]["max"] <= 3
    # Every paid invoice's invoice.paid reached the bench's merchant endpoint.
    assert report["figures"]["paid_event_to_merchant"]["n"] == 3
    assert report["figures"]["paid_event_to_merchant"]["missing"] == 0
    # Every refund was queued by Paystack (201) and seen processed.
    refunds = report["figures"]["refunds"]
    assert refunds["answers"] == {"201": 3} and refunds["n"] == 3
    # Every figure stands beside the last saved run's (none the first time) and its goal.
    table = [line for line in output.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header[:4] == ["measurement", "this run", "last run", "goal"], output
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[1:]]
    assert rows and all(row[2] == "none" for row in rows), output
    goals = {row[0].split(" (")[0]: row[3] for row in rows}
    assert "met" in goals["time to paid"] and "met" in goals["create, concurrency 1"], output
