"""A small chaos run inside `make test`: 60 invoices, each process SIGKILLed once, sandbox
faults on, Paystack down once for 3 s, the merchant's endpoint failing a fifth of deliveries,
slow at times and down once for 4 s; once as `make run` runs payrecon, once as it is
deployed (Postgres, two API processes behind one address, two workers). `make chaos` runs
the full one."""

from __future__ import annotations

import asyncio
import re
import sys

import pytest


def _row(output: str, label: str) -> str:
    match = re.search(rf"^\| {re.escape(label)}\s*\| (.*)$", output, re.MULTILINE)
    assert match, f"no '{label}' row in:\n{output}"
    return match.group(1).strip()


@pytest.mark.parametrize(
    ("topology", "killed"),
    [
        ("single", ("worker", "api", "temporal")),
        ("production", ("worker-1", "worker-2", "api-1", "api-2", "temporal")),
    ],
)
async def test_small_chaos_run_keeps_every_invoice_right(
    topology: str, killed: tuple[str, ...]
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devstack.chaos",
        f"--topology={topology}",
        "--invoices=60",
        "--kills=1",
        "--due-seconds=12",
        "--late-window=8",
        "--poll-schedule=1,2,4",
        "--outages=1",
        "--outage-seconds=3",
        "--merchant-down-seconds=4",
        "--events-wait=90",
        "--books=3",
        "--refunds=1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    print(output)

    assert _row(output, "wrong final states") == "0", output
    assert _row(output, "double transitions") == "0", output
    assert _row(output, "payments not reflected") == "0", output
    assert _row(output, "invoices") == "60 (60 created)"
    # Paystack went away once: creates meanwhile were refused or waited, none half-made.
    assert re.fullmatch(r"\d+\.\d s", _row(output, "Paystack outages")), output
    assert _row(output, "half-made invoices") == "0", output
    # Every transition's event reached the merchant, none made up; one receipt per paid.
    assert _row(output, "lost events") == "0", output
    assert _row(output, "phantom events") == "0", output
    assert int(_row(output, "events expected (transitions)")) >= 60 * 2, output
    assert re.fullmatch(
        r"1 each \(\d+ paid invoices\)", _row(output, "receipt Message-IDs per paid invoice")
    ), output
    assert _row(output, "receipts for unpaid invoices") == "0", output
    merchant = _row(output, "merchant endpoint")
    assert re.search(r"[1-9]\d* answered 500", merchant), output
    assert "0 bad signatures" in merchant, output
    for name in killed:
        assert _row(output, f"restarts: {name}") == "1"
    assert int(_row(output, "fault: dropped")) > 0
    # The sweep ran through it all, found all the trouble made on Paystack's side, healed
    # what the faults hid, and reported nothing else.
    assert _row(output, "injected on Paystack, found") == (
        "orphan payments 3/3, paid twice 3/3, reversed 3/3, wrong fee 1/1, "
        "settlement arithmetic 1/1"
    ), output
    assert re.fullmatch(r"(\d+)/\1", _row(output, "paid short, found")), output
    assert _row(output, "missed payments (webhook lost, polls failing)").endswith(" 0 open")
    assert _row(output, "discrepancies chaos did not cause") == "0", output
    assert ", 0 failed; the final one completed" in _row(output, "reconciliation runs")
    assert "orphan_payment" in output.split("as `payrecon recon show` prints it")[1], output
    # Refunds and disputes through it all: none above what was paid, none made twice at
    # Paystack, and every one ends as Paystack has it.
    assert _row(output, "money after payment") == (
        "full 1, partial 1, failing 1, attention 1, dashboard 1, dispute_declined 1, "
        "dispute_accepted 1"
    ), output
    assert _row(output, "over-refunds") == "0", output
    assert _row(output, "refunds made twice at Paystack") == "0", output
    assert re.fullmatch(r"0 \(of [1-9]\d*\)", _row(output, "refunds not as Paystack has them"))
    assert _row(output, "disputes not as Paystack has them") == "0 (of 2)", output
    # It says what it is doing as it goes, long before its table.
    progress = re.findall(r"^\[\s*[\d.]+s\] (.*)$", output, re.MULTILINE)
    assert "invoices: created, paid or not, kills: done (60/60)" in progress, output
    assert sum("SIGKILLed and started again" in line for line in progress) == len(killed), output
    assert sum("Paystack down (1/1)" in line for line in progress) == 1, output
    assert sum("merchant endpoint down for 4 s" in line for line in progress) == 1, output
    assert process.returncode == 0, output
