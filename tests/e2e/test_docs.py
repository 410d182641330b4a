"""The API's docs work with no internet: /docs and /redoc load Swagger UI and ReDoc from the
API itself, and every asset those pages reference is served."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.stack import Stack

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_every_asset_from_the_api(stack: Stack, page: str) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as client:
        html = await client.get(page)
        assert html.status_code == 200, html.text
        assets = {one or other for one, other in ASSET.findall(html.text)}
        scripts = {asset for asset in assets if asset.endswith(".js")}
        assert scripts, html.text  # the page does load its UI from somewhere
        for asset in sorted(assets):
            # Nothing from another host: a machine with no internet renders the same page.
            assert not asset.startswith(("http:", "https:", "//")), asset
            fetched = await client.get(asset)
            assert fetched.status_code == 200, asset
            assert len(fetched.content) > 0, asset
        assert "/openapi.json" in assets or "/openapi.json" in html.text
