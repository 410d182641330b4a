"""Heartbeats for a long activity, sent while it runs: with a heartbeat timeout, a worker
that dies mid-way is noticed within that timeout rather than at the end of the
start-to-close one, and the activity is retried on another worker."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from temporalio import activity

P = ParamSpec("P")
R = TypeVar("R")


def heartbeating(run: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Beats at half the heartbeat timeout the caller set (none set: none sent)."""

    @functools.wraps(run)
    async def beating(*args: P.args, **kwargs: P.kwargs) -> R:
        timeout = activity.info().heartbeat_timeout
        if not timeout:
            return await run(*args, **kwargs)
        beats = asyncio.create_task(_beat_every(timeout.total_seconds() / 2))
        try:
            return await run(*args, **kwargs)
        finally:
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats

    return beating


async def _beat_every(seconds: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(seconds)
