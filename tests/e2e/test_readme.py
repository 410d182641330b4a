"""Every command in the README runs as written.

The README's addresses and key are `make run`'s; here each command runs against the test
stack with only those swapped, and placeholders (`<id>`, `inv-…`, `42`) filled from what the
commands before them made. What cannot run inside `make test` is checked as far as it can be:
`make` targets by a dry run (`make -n`), and `docker compose` (no Docker engine here) by the
files its set-up copies."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from db import reconciliation as books
from sandbox.controls import SandboxControls
from tests.helpers import (
    create_invoice,
    deliveries,
    eventually,
    pay,
    set_webhooks,
    wait_for_status,
)
from tests.stack import API_KEY, Stack

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
MAKE_RUN_API, MAKE_RUN_SANDBOX, DEV_KEY = (
    "http://127.0.0.1:8000",
    "http://127.0.0.1:8100",
    "dev-api-key-change-me",
)


def readme_commands() -> list[str]:
    """Each command of each `sh` block, continuation lines joined, comments dropped. In a
    block that shows output, the commands are the lines after `$ `."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        shows_output = any(line.startswith("$ ") for line in block.splitlines())
        for line in block.replace("\\\n", " ").splitlines():
            if shows_output:
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


COMMANDS = readme_commands()


def by_program(*programs: str) -> list[str]:
    return [command for command in COMMANDS if command.split()[0] in programs]


def test_the_readme_has_the_commands_this_test_runs() -> None:
    ran = by_program("curl", "payrecon", ".venv/bin/temporal", ".venv/bin/alembic", "make")
    checked = by_program("cp", "docker")
    assert sorted(ran + checked) == sorted(COMMANDS), set(COMMANDS) - set(ran + checked)
    assert COMMANDS[:2] == ["make run", "make test"]  # the README opens with them


def shell(command: str, env: dict[str, str], cwd: Path = ROOT) -> str:
    finished = subprocess.run(
        ["bash", "-c", command],  # noqa: S607 - the README's own commands, as a user runs them
        cwd=cwd,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, (command, finished.stdout, finished.stderr)
    return finished.stdout


async def run(command: str, env: dict[str, str]) -> str:
    """`shell` off the event loop, which the test session's worker shares."""
    return await asyncio.to_thread(shell, command, env)


def against(stack: Stack, command: str) -> str:
    return (
        command.replace(MAKE_RUN_API, stack.api_url)
        .replace(MAKE_RUN_SANDBOX, stack.sandbox_url)
        .replace(DEV_KEY, API_KEY)
    )


async def test_the_curl_commands(stack: Stack, sandbox: httpx.AsyncClient) -> None:
    create, read, polling = by_program("curl")
    created = json.loads(await run(against(stack, create), stack.env))
    assert created["status"] == "pending" and created["authorization_url"], created
    shown = json.loads(await run(against(stack, read).replace("<id>", created["id"]), stack.env))
    assert shown["id"] == created["id"] and shown["status"] == "pending"
    try:
        config = json.loads(await run(against(stack, polling), stack.env))
        assert config["webhooks_enabled"] is False, config
        # "pay again; the next poll finds it"
        await pay(sandbox, created["id"])
        async with httpx.AsyncClient(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {API_KEY}"}
        ) as api:
            await wait_for_status(api, created["id"], "paid", within=20)
    finally:
        await set_webhooks(sandbox, True)


async def test_the_operator_commands(
    stack: Stack, api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    invoice = await create_invoice(api, amount=300_000)
    await pay(sandbox, invoice["id"], amount=200_000)  # short: needs review
    await wait_for_status(api, invoice["id"], "needs_review")
    [delivery] = deliveries(stack, invoice["id"])
    # A payment no invoice asked for, for the reconciliation commands to find: today's, so
    # the README's window is moved to today.
    orphan = await SandboxControls(sandbox).create_payment(90_000, "NGN", "walk-in@example.com")
    today = datetime.now(UTC).date()
    tomorrow = today + timedelta(days=1)
    engine = stack.engine
    # The CLIs find this stack's Temporal and database from the environment.
    outputs = {}
    for command in by_program("payrecon", ".venv/bin/temporal"):
        filled = (
            command.replace("inv-…", invoice["id"])
            .replace(" 42", f" {delivery.id}")
            .replace("--from 2026-11-23 --to 2026-11-24", f"--from {today} --to {tomorrow}")
        )
        if "recon_…" in filled:
            [newest], _ = books.list_runs(engine, limit=1, offset=0)
            filled = filled.replace("recon_…", newest.id)
        if "dsc_…" in filled:
            found, _ = books.list_discrepancies(
                engine, kind="orphan_payment", status="open", invoice_id=None, limit=1, offset=0
            )
            filled = filled.replace("dsc_…", found[0].id)
        outputs[command] = await run(filled, stack.env)
    assert invoice["id"] in outputs["payrecon invoices list --status needs_review"]
    assert "needs_review" in outputs["payrecon invoices show inv-…"]
    assert "verified; needs_review" in outputs["payrecon invoices reverify inv-…"]
    [recon_run, recon_show, recon_open, recon_resolve] = [
        command for command in by_program("payrecon") if command.startswith("payrecon recon ")
    ]
    assert "orphan_payment" in outputs[recon_run] and orphan["reference"] in outputs[recon_run]
    assert "orphan_payment" in outputs[recon_show]
    assert orphan["reference"] in outputs[recon_open]
    assert ": resolved" in outputs[recon_resolve]
    [resolved], _ = books.list_discrepancies(
        engine, kind="orphan_payment", status=None, invoice_id=None, limit=5, offset=0
    )
    assert resolved.status == "resolved" and resolved.paystack_reference == orphan["reference"]
    [needs_review, _] = by_program(".venv/bin/temporal")

    async def listed() -> None:  # Temporal's visibility catches up with the search attribute
        assert f"invoice-{invoice['id']}" in await run(needs_review, stack.env)

    await eventually(listed)


def test_the_alembic_commands(tmp_path: Path) -> None:
    # On a database of their own, with a copy of the migrations: `revision` writes a file.
    shutil.copy(ROOT / "alembic.ini", tmp_path)
    shutil.copytree(ROOT / "db" / "migrations", tmp_path / "db" / "migrations")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'readme.db'}", "PYTHONPATH": str(ROOT)}
    for command in by_program(".venv/bin/alembic"):
        shell(command.replace(".venv/bin/alembic", f"{sys.executable} -m alembic"), env, tmp_path)
    [written] = (tmp_path / "db" / "migrations" / "versions").glob("*_what_changes.py")
    assert "def upgrade() -> None:" in written.read_text()


@pytest.mark.parametrize("command", by_program("make"))
def test_the_make_commands_name_real_targets(command: str) -> None:
    shell(command.replace("make ", "make -n ", 1), {})


def test_the_compose_set_up_copies_files_that_exist() -> None:
    for command in by_program("cp"):
        source = command.split()[1]
        assert (ROOT / source).is_file(), source
    assert (ROOT / "docker-compose.yml").is_file()
