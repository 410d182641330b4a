"""What a long run (make chaos, make bench) is doing as it goes: its phase, counts and the
time elapsed. A progress bar on a terminal (rich); plain lines elsewhere, such as a CI log,
at each tenth of a phase and at its end."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bars


class Phase:
    def __init__(self, progress: Progress, name: str, total: int | None) -> None:
        self._progress, self.name, self.total, self.done = progress, name, total, 0
        self._next_line = 0.1
        self._task = progress.bars.add_task(name, total=total) if progress.bars else None

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self._task is not None and self._progress.bars is not None:
            self._progress.bars.update(self._task, advance=count)
        elif self.total and self.done / self.total >= self._next_line:
            self._next_line = (int(self.done * 10 / self.total) + 1) / 10
            self._progress.say(f"{self.name}: {self.done}/{self.total}")

    def note(self, text: str) -> None:
        """Something that happened along the way (a kill, a restart)."""
        self._progress.say(f"{self.name}: {text}")


class Progress:
    def __init__(self, *, bars: bool | None = None) -> None:
        self.started = time.monotonic()
        use_bars = sys.stdout.isatty() if bars is None else bars
        self.bars = (
            Bars(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            if use_bars
            else None
        )

    def say(self, text: str) -> None:
        line = f"[{time.monotonic() - self.started:7.1f}s] {text}"
        if self.bars is not None:
            self.bars.console.print(line)
        else:
            print(line, flush=True)

    @contextmanager
    def phase(self, name: str, total: int | None = None) -> Iterator[Phase]:
        self.say(f"{name}…")
        phase = Phase(self, name, total)
        if self.bars is not None and not self.bars.live.is_started:
            self.bars.start()
        try:
            yield phase
        finally:
            counted = f" ({phase.done}/{phase.total})" if phase.total else ""
            self.say(f"{name}: done{counted}")

    def close(self) -> None:
        if self.bars is not None:
            self.bars.stop()
