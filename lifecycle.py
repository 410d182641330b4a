"""How payrecon's processes end."""

from __future__ import annotations

import gc
import logging
import os
import sys
from typing import NoReturn


def exit_process(code: int) -> NoReturn:
    """End a process that used a Temporal client, skipping interpreter teardown.

    The client's Rust threads can outlive the event loop and call into Python while it
    finalizes, which aborts the process (SIGABRT, "PyGILState_Release ... must be
    current"; temporalio/sdk-python#300). Output is flushed first, so nothing is lost.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def freeze_startup_objects() -> None:
    """What start-up made lives as long as the process: keep it out of the garbage
    collector's full passes, which otherwise stall every request for tens of milliseconds."""
    gc.collect()
    gc.freeze()
