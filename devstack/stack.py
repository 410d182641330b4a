"""One payrecon stack on this machine, defined once: `make run`, `make chaos`, `make bench`
and the test session all start theirs from here (`make demo` talks to `make run`'s).

Its processes are one table, `Stack.define`: the Temporal dev server, the Paystack sandbox,
the workers, the API processes, and (with more than one API) a balancer giving them one
address. A topology says how many of each and which database; a new kind of process is one
more entry in the table. Every process can be killed and started again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from config import DEV_API_KEY, DEV_PAYSTACK_SECRET_KEY
from devstack.postgres import ThrowawayPostgres
from devstack.processes import (
    Service,
    free_port,
    python_module,
    temporal_dev_server,
    wait_for_http,
    wait_for_port,
)
from workflows.types import search_attribute_kinds

Ready = Callable[[], None]


@dataclass(frozen=True)
class Topology:
    """How many API and worker processes, and whether the database is Postgres."""

    apis: int = 1
    workers: int = 1
    postgres: bool = False

    @classmethod
    def named(cls, name: str) -> Topology:
        return TOPOLOGIES[name]


TOPOLOGIES = {
    # One of each on SQLite: what `make run` and the test session run.
    "single": Topology(),
    # As payrecon is deployed: Postgres, two API processes behind one address, two workers.
    "production": Topology(apis=2, workers=2, postgres=True),
}


@dataclass
class Ports:
    temporal: int = field(default_factory=free_port)
    ui: int = field(default_factory=free_port)
    api: int = field(default_factory=free_port)
    sandbox: int = field(default_factory=free_port)
    # The mail catcher's SMTP server, and its page.
    smtp: int = field(default_factory=free_port)
    mail: int = field(default_factory=free_port)


@dataclass
class Stack:
    directory: Path
    topology: Topology = field(default_factory=Topology)
    ports: Ports = field(default_factory=Ports)
    secret_key: str = DEV_PAYSTACK_SECRET_KEY
    # The key the stack's own tools call the API with; PAYRECON_API_KEYS in `settings`
    # may name more.
    api_key: str = DEV_API_KEY
    # Settings of every payrecon process beyond the wiring (poll schedule, log level, …).
    settings: dict[str, str] = field(default_factory=dict)
    sandbox_settings: dict[str, str] = field(default_factory=dict)
    temporal_args: list[str] = field(default_factory=list)
    # Processes whose output goes to the terminal instead of a file in `directory`.
    on_terminal: frozenset[str] = frozenset()
    # Processes this stack does not run (the test session runs its worker in-process).
    without: frozenset[str] = frozenset()
    services: dict[str, Service] = field(default_factory=dict)
    postgres: ThrowawayPostgres | None = None
    _ready: dict[str, Ready] = field(default_factory=dict)

    # --- where things are --------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The API's one address (the balancer's, with more than one API process)."""
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.sandbox}"

    @property
    def mail_url(self) -> str:
        """The mail catcher's page: the emails the workers sent."""
        return f"http://127.0.0.1:{self.ports.mail}"

    @property
    def smtp_url(self) -> str:
        return f"smtp://127.0.0.1:{self.ports.smtp}"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.ports.temporal}"

    @property
    def database_url(self) -> str:
        if self.postgres is not None:
            return self.postgres.url
        return f"sqlite:///{self.directory / 'payrecon.db'}"

    def env(self, **overrides: str) -> dict[str, str]:
        """The settings every payrecon process of this stack shares."""
        return {
            "PAYSTACK_SECRET_KEY": self.secret_key,
            "PAYSTACK_BASE_URL": self.sandbox_url,
            "TEMPORAL_ADDRESS": self.temporal_address,
            "DATABASE_URL": self.database_url,
            "PAYRECON_API_KEYS": self.api_key,
            # Paystack sends the customer back here after checkout.
            "PAYSTACK_CALLBACK_URL": f"{self.api_url}/checkout/return",
            "PAYRECON_DEVELOPMENT_MODE": "true",
            "PAYRECON_LOG_LEVEL": "WARNING",
            "PAYRECON_WORKER_METRICS_ADDRESS": "",
            # The dev server's UI, whose page calls the API's /codec (CORS).
            "PAYRECON_TEMPORAL_UI_ORIGIN": f"http://localhost:{self.ports.ui}",
            **self.settings,
            **overrides,
        }

    def named(self, kind: str) -> list[str]:
        """The processes of one kind: `api` -> ['api'] or ['api-1', 'api-2']."""
        return [name for name in self.services if name.split("-")[0] == kind]

    # --- the processes: one entry each --------------------------------------------

    def define(self) -> None:
        apis = self._numbered("api", self.topology.apis)
        api_ports = {name: self.ports.api if len(apis) == 1 else free_port() for name in apis}
        self._add(
            "temporal",
            temporal_dev_server(
                self.directory / "temporal.db",
                self.ports.temporal,
                self.ports.ui,
                search_attribute_kinds(),
                codec_endpoint=f"{self.api_url}/codec",
                extra_args=self.temporal_args,
            ),
            ready=lambda: wait_for_port("127.0.0.1", self.ports.temporal, timeout=60),
        )
        self._add(
            "sandbox",
            python_module("sandbox"),
            env={
                **self.env(),
                "SANDBOX_PORT": str(self.ports.sandbox),
                "SANDBOX_WEBHOOK_URL": f"{self.api_url}/webhooks/paystack",
                **self.sandbox_settings,
            },
            ready=lambda: wait_for_http(f"{self.sandbox_url}/_sandbox/healthz", timeout=60),
        )
        self._add(
            "mailcatcher",
            python_module(
                "devstack.mailcatcher",
                *("--smtp-port", str(self.ports.smtp), "--http-port", str(self.ports.mail)),
            ),
            ready=lambda: wait_for_http(f"{self.mail_url}/healthz", timeout=30),
        )
        # The customers' emails go to the mail catcher, when this stack runs one.
        mail = {} if "mailcatcher" in self.without else {"SMTP_URL": self.smtp_url}
        for name in self._numbered("worker", self.topology.workers):
            self._add(name, python_module("worker"), env=self.env(**mail))
        for name, port in api_ports.items():
            self._add(
                name,
                python_module("api"),
                env=self.env(PAYRECON_API_PORT=str(port)),
                ready=_http_ready(f"http://127.0.0.1:{port}/healthz"),
            )
        if len(apis) > 1:
            backends = ",".join(str(port) for port in api_ports.values())
            self._add(
                "balancer",
                python_module("devstack.balancer", str(self.ports.api), backends),
                ready=lambda: wait_for_port("127.0.0.1", self.ports.api, timeout=30),
            )

    def _numbered(self, kind: str, count: int) -> list[str]:
        return [kind] if count == 1 else [f"{kind}-{n}" for n in range(1, count + 1)]

    def _add(
        self,
        name: str,
        command: list[str],
        env: dict[str, str] | None = None,
        ready: Ready | None = None,
    ) -> None:
        if name.split("-")[0] in self.without or name in self.without:
            return
        log_path = None if name in self.on_terminal else self.directory / f"{name}.log"
        self.services[name] = Service(name, command, env=env or {}, log_path=log_path)
        if ready is not None:
            self._ready[name] = ready

    # --- running it --------------------------------------------------------------

    def start(self, name: str) -> None:
        self.services[name].start()
        if name in self._ready:
            self._ready[name]()

    def start_all(self) -> None:
        """Postgres first (its address goes into every process's settings), then the table
        in order: Temporal, the sandbox, the mail catcher, workers, APIs, the balancer."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.topology.postgres and self.postgres is None:
            self.postgres = ThrowawayPostgres.start()
        if not self.services:
            self.define()
        for name in self.services:
            self.start(name)

    def stop_all(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None


def _http_ready(url: str) -> Ready:
    return lambda: wait_for_http(url, timeout=60)
