"""A throwaway Postgres server for the tests: Debian's binaries, a free loopback port, data
in a temporary directory, removed when stopped."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devstack.processes import free_port, wait_for_port


def postgres_bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise RuntimeError(
            "Postgres is not installed: run `make postgres` (apt-get install postgresql)"
        )
    return Path(candidates[-1]).parent


def _as_postgres_user(command: list[str]) -> list[str]:
    # Postgres refuses to run as root; CI runs as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass
class ThrowawayPostgres:
    directory: Path
    port: int
    bin_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> ThrowawayPostgres:
        bin_dir = postgres_bin_dir()
        directory = Path(tempfile.mkdtemp(prefix="payrecon-pg-"))
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        data = directory / "data"
        server = cls(directory, free_port(), bin_dir)
        server._run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ]
        )
        server._run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(directory / "postgres.log"),
                "-o",
                f"-p {server.port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off",
                "-w",
                "start",
            ]
        )
        wait_for_port("127.0.0.1", server.port)
        return server

    def stop(self) -> None:
        self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.directory / "data"),
                "-m",
                "fast",
                "stop",
            ],
            check=False,
        )
        shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self, command: list[str], *, check: bool = True) -> None:
        subprocess.run(  # noqa: S603 - our own command line
            _as_postgres_user(command), check=check, capture_output=True, cwd=self.directory
        )
