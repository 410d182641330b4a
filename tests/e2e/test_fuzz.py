"""Schemathesis against the API's own OpenAPI: no 5xx, and every answer matches the schema,
once with a caller's API key and once with an operator's (webhook bodies signed). `make
test` runs a small budget; `make fuzz` sets PAYRECON_FUZZ_EXAMPLES for the full one."""

from __future__ import annotations

import asyncio
import os
import re

from devstack.processes import BIN_DIR
from tests.helpers import delivery_count
from tests.stack import API_KEY, OPERATOR_KEY, SECRET_KEY, Stack

EXAMPLES_PER_OPERATION = int(os.environ.get("PAYRECON_FUZZ_EXAMPLES", "8"))
# Of each run (one a key).
MINIMUM_CASES = int(os.environ.get("PAYRECON_FUZZ_MINIMUM_CASES", "150"))
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


KEYS = {"caller": API_KEY, "operator": OPERATOR_KEY}


async def test_generated_requests_get_no_5xx_and_schema_conformant_answers(stack: Stack) -> None:
    """With each key at once: the suite waits for one run's length."""
    deliveries_before = delivery_count(stack)
    outputs = await asyncio.gather(*(fuzz(stack, key) for key in KEYS.values()))
    for name, (_, output) in zip(KEYS, outputs, strict=True):
        print(output[-3000:])
        print(f"fuzz with the {name} key")
    for returncode, output in outputs:
        assert returncode == 0, output[-8000:]
        counted = re.search(r"(\d+) generated", output)
        assert counted is not None, output[-3000:]
        generated = int(counted.group(1))
        assert generated >= MINIMUM_CASES, output[-3000:]
    # Signed bodies got past the signature check and were recorded.
    assert delivery_count(stack) > deliveries_before


async def fuzz(stack: Stack, api_key: str) -> tuple[int | None, str]:
    process = await asyncio.create_subprocess_exec(
        str(BIN_DIR / "st"),
        "run",
        f"{stack.api_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {api_key}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--request-timeout",
        "60",
        "--seed",
        "20261123",
        "--no-color",
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
            "PAYSTACK_SECRET_KEY": SECRET_KEY,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    return process.returncode, output
