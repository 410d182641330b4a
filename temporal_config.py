"""Connecting to Temporal the way the `temporal` CLI does, through the SDK's own
`temporalio.envconfig`: a TOML profile (`TEMPORAL_CONFIG_FILE`, `TEMPORAL_PROFILE`) and the
environment (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS`,
`TEMPORAL_TLS_SERVER_CA_CERT_PATH`, `TEMPORAL_TLS_CLIENT_CERT_PATH`, ...).

The names payrecon used before it read the SDK's configuration still work, with a warning.
Every client payrecon makes, here, encrypts its payloads (temporal_codec.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import structlog
from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig
from temporalio.runtime import Runtime

from config import Settings, get_settings
from temporal_codec import payrecon_data_converter

log = structlog.get_logger(__name__)

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"
# The SDK's environment names payrecon's deployment files may set.
SDK_ENVIRONMENT_NAMES = frozenset(
    {
        "TEMPORAL_ADDRESS",
        "TEMPORAL_NAMESPACE",
        "TEMPORAL_API_KEY",
        "TEMPORAL_TLS",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_KEY_PATH",
        "TEMPORAL_TLS_SERVER_NAME",
        "TEMPORAL_CONFIG_FILE",
        "TEMPORAL_PROFILE",
    }
)
# payrecon's earlier names -> the SDK's and the CLI's.
LEGACY_NAMES = {
    "TEMPORAL_TLS_CA_FILE": "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_CERT_FILE": "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_KEY_FILE": "TEMPORAL_TLS_CLIENT_KEY_PATH",
}


class TemporalConfigError(ValueError):
    """The Temporal connection settings contradict each other."""


def _with_legacy_names(environ: Mapping[str, str]) -> dict[str, str]:
    env = dict(environ)
    for old, new in LEGACY_NAMES.items():
        if old not in env:
            continue
        log.warning("temporal.legacy_setting", setting=old, use_instead=new)
        env.setdefault(new, env[old])
    return env


def connect_config(environ: Mapping[str, str] | None = None) -> ClientConnectConfig:
    """Keyword arguments for `Client.connect`, from the profile and the environment
    (this process's unless `environ` is given)."""
    env = _with_legacy_names(os.environ if environ is None else environ)
    profile = ClientConfigProfile.load(override_env_vars=env)
    tls = profile.tls
    if tls is not None and (tls.client_cert is None) != (tls.client_private_key is None):
        raise TemporalConfigError(
            "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH go together"
        )
    config = profile.to_client_connect_config()
    config.setdefault("target_host", DEFAULT_ADDRESS)
    config.setdefault("namespace", DEFAULT_NAMESPACE)
    config.setdefault("tls", False)
    return config


async def connect(
    *,
    lazy: bool = False,
    runtime: Runtime | None = None,
    environ: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> Client:
    """A client whose payloads are encrypted with the codec keys of `settings` (this
    process's unless given)."""
    return await Client.connect(
        **connect_config(environ),
        lazy=lazy,
        runtime=runtime,
        data_converter=payrecon_data_converter(settings or get_settings()),
    )
