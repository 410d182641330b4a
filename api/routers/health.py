"""Liveness and readiness."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Engine, text

from api.deps import EngineDep, TemporalDep

router = APIRouter(tags=["health"])


class Readiness(BaseModel):
    status: str
    database: bool
    temporal: bool


def _database_ok(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database and Temporal are reachable",
    responses={
        200: {"model": Readiness, "description": "Ready"},
        503: {"model": Readiness, "description": "The database or Temporal is unreachable"},
    },
)
async def readyz(engine: EngineDep, temporal: TemporalDep) -> JSONResponse:
    database = await run_in_threadpool(_database_ok, engine)
    try:
        temporal_ok = await temporal.service_client.check_health(timeout=timedelta(seconds=2))
    except Exception:
        temporal_ok = False
    ready = database and temporal_ok
    return JSONResponse(
        {
            "status": "ready" if ready else "not_ready",
            "database": database,
            "temporal": temporal_ok,
        },
        status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
    )
