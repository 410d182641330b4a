"""Child processes with readiness checks and clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

BIN_DIR = Path(sys.executable).parent
TEMPORAL_CLI = BIN_DIR / "temporal"
# The dynamic configuration the compose file's Temporal reads too.
TEMPORAL_DYNAMIC_CONFIG = Path(__file__).parents[1] / "deploy/temporal/dynamicconfig.yaml"


def temporal_dynamic_config() -> dict[str, object]:
    """Each setting's value (entries without constraints: one each)."""
    settings = yaml.safe_load(TEMPORAL_DYNAMIC_CONFIG.read_text())
    return {name: entries[0]["value"] for name, entries in settings.items()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(
    url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    def answers() -> None:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        if httpx.get(url, timeout=1.0).status_code >= 500:
            raise ConnectionError(f"{url} answers 5xx")

    _until_ready(answers, (httpx.TransportError, ConnectionError), timeout, f"{url} did not answer")


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    def opens() -> None:
        with socket.create_connection((host, port), timeout=1.0):
            pass

    _until_ready(opens, (OSError,), timeout, f"{host}:{port} did not open")


def _until_ready(
    check: Callable[[], None],
    failures: tuple[type[BaseException], ...],
    timeout: float,
    what: str,
) -> None:
    try:
        for attempt in Retrying(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(0.1),
            retry=retry_if_exception_type(failures),
        ):
            with attempt:
                check()
    except RetryError as error:
        raise TimeoutError(f"{what} within {timeout:.0f} s") from error.last_attempt.exception()


@dataclass
class Service:
    """One child process; its own process group, so a stop reaches its children too."""

    name: str
    command: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        output = open(self.log_path, "ab") if self.log_path else None
        self.process = subprocess.Popen(  # noqa: S603 - our own commands
            list(self.command),
            env={**os.environ, **self.env},
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def temporal_dev_server(
    db_file: Path,
    port: int,
    ui_port: int,
    search_attributes: Mapping[str, str],
    codec_endpoint: str | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    command = [
        str(TEMPORAL_CLI),
        "server",
        "start-dev",
        "--db-filename",
        str(db_file),
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--ip",
        "127.0.0.1",
        "--log-level",
        "warn",
        "--ui-disable-news-fetch",
        # A write-ahead log, synced at checkpoints: as safe against a killed process as the
        # default rollback journal, without its fsyncs at every commit.
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
    ]
    for name, value in temporal_dynamic_config().items():
        command += ["--dynamic-config-value", f"{name}={json.dumps(value)}"]
    for name, kind in search_attributes.items():
        command += ["--search-attribute", f"{name}={kind}"]
    if codec_endpoint is not None:
        # The UI's browser page asks the API to decrypt what it shows (api/routers/codec.py).
        command += ["--ui-codec-endpoint", codec_endpoint]
    return command + list(extra_args)
