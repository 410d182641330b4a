"""FastAPI dependencies: settings, database engine, Temporal client, API-key check."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends, HTTPException, Query, Request, Response, status
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from temporalio.client import Client

from api.forwarded import request_from_this_machine
from api.rate_limits import CallerRateLimits
from config import Settings
from inbox.relayer import Relayer
from paystack.client import PaystackClient

# What the lifespan (api/main.py) put on the app's state: untyped there, typed here.


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_engine(request: Request) -> Engine:
    return cast(Engine, request.app.state.engine)


def get_temporal(request: Request) -> Client:
    return cast(Client, request.app.state.temporal)


def get_paystack(request: Request) -> PaystackClient:
    return cast(PaystackClient, request.app.state.paystack)


def get_relayer(request: Request) -> Relayer:
    return cast(Relayer, request.app.state.relayer)


bearer = HTTPBearer(auto_error=False, description="An API key from PAYRECON_API_KEYS")


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the name its API key belongs to, and whether it operates."""

    name: str
    operator: bool = False

    def owns(self, owner: str) -> bool:
        """Whether this caller may see an invoice `owner` created: its own, or any."""
        return self.operator or owner == self.name


def check_api_key(credentials: HTTPAuthorizationCredentials | None, settings: Settings) -> Caller:
    given = credentials.credentials.encode() if credentials else b""
    # Compare against every key, so the time taken says nothing about which one matched.
    matches = [
        api_key
        for api_key in settings.payrecon_api_keys
        if hmac.compare_digest(given, api_key.key.get_secret_value().encode())
    ]
    if not credentials or not matches:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Caller(matches[0].caller, operator=matches[0].operator)


class KeyCheckedFirst(APIRoute):
    """FastAPI reads and parses a body before it solves dependencies: routes of this class
    check the API key first, so a caller without one has no body read, parsed or judged."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def checked(request: Request) -> Response:
            caller = check_api_key(await bearer(request), get_settings(request))
            request.state.caller = caller
            # Before the body is read, too: a caller over its rate costs nothing more.
            cast(CallerRateLimits, request.app.state.rate_limits).check(caller.name)
            return await handle(request)

        return checked


def current_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The caller KeyCheckedFirst found; on any other route, the key checked here."""
    found = getattr(request.state, "caller", None)
    if isinstance(found, Caller):
        return found
    return check_api_key(credentials, get_settings(request))


def allow_metrics(
    request: Request, settings: Settings, credentials: HTTPAuthorizationCredentials | None
) -> None:
    """Metrics tell how much money moves: for the metrics key's holders if there is one,
    else for this machine's own scraper only."""
    key = settings.payrecon_metrics_key
    if key is not None:
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, key.get_secret_value().encode()):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="metrics need 'Authorization: Bearer <PAYRECON_METRICS_KEY>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
    elif not request_from_this_machine(request, settings):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="metrics are served to this machine only; set PAYRECON_METRICS_KEY to "
            "scrape from elsewhere",
        )


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
RelayerDep = Annotated[Relayer, Depends(get_relayer)]
PaystackDep = Annotated[PaystackClient, Depends(get_paystack)]
CallerDep = Annotated[Caller, Depends(current_caller)]
# Every list's page: `limit` items from `offset`.
Limit = Annotated[int, Query(ge=1, le=200, description="Items a page, at most 200")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip")]
