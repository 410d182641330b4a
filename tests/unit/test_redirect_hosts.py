"""Where a checkout return may send a customer: each caller's hosts, outside development
mode (PAYRECON_REDIRECT_HOSTS); any other host is a 422 naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.schemas import CreateInvoice
from config import Settings

INVOICE = {"customer_email": "ada@example.com", "amount": 250000, "currency": "NGN"}


def test_each_callers_hosts_are_read_from_one_setting() -> None:
    settings = Settings.model_validate(
        {"payrecon_redirect_hosts": "shop: a.example, B.example. ;school:learn.example"}
    )
    assert settings.payrecon_redirect_hosts == {
        "shop": {"a.example", "b.example"},
        "school": {"learn.example"},
    }
    assert Settings().payrecon_redirect_hosts == {}


@pytest.mark.parametrize("written", ["shop", "shop:a.example;shop:b.example", "sh op:a.example"])
def test_a_malformed_setting_is_refused(written: str) -> None:
    with pytest.raises(ValidationError, match="caller:host"):
        Settings.model_validate({"payrecon_redirect_hosts": written})


def test_a_return_url_on_another_host_is_refused_naming_its_field() -> None:
    body = CreateInvoice.model_validate(
        {
            **INVOICE,
            "success_url": "https://a.example/paid?order=1",
            "cancel_url": "https://evil.example/phish",
        }
    )
    [problem] = body.redirect_refusals(frozenset({"a.example"}))
    assert problem["loc"] == ["body", "cancel_url"]
    assert "evil.example" in problem["msg"]
    # A caller with no entry gives no redirect URL at all.
    assert [p["loc"][1] for p in body.redirect_refusals(frozenset())] == [
        "success_url",
        "cancel_url",
    ]
    # No return URL, nothing to refuse.
    assert CreateInvoice.model_validate(INVOICE).redirect_refusals(frozenset()) == []
