"""`python -m api`: serve the API with uvicorn.

Proxy headers are left to PAYRECON_TRUSTED_PROXY_HEADER, not to uvicorn, so one setting
decides whose word about the client's address is taken.
"""

from __future__ import annotations

import os

import uvicorn

from lifecycle import exit_process


def main() -> None:
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=os.environ.get("PAYRECON_API_HOST", "127.0.0.1"),
        port=int(os.environ.get("PAYRECON_API_PORT", "8000")),
        proxy_headers=False,
        # The API logs its own start, requests and stop (structlog); uvicorn only problems.
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
    exit_process(0)
