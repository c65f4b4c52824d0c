"""A progress bar for long reports and rollup rebuilds, shown only to a person watching.

The jobs themselves take a plain ``(done, total)`` callback (:data:`ProgressCallback`) and know
nothing of terminals; :class:`ProgressBar` is such a callback that draws a rich bar on stderr, but
only when stderr is a terminal and the job has already run for :data:`DELAY` (a quick report shows
nothing), and removes it when done, so piped or redirected output never carries it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

__all__ = ["DELAY", "ProgressBar", "ProgressCallback"]

ProgressCallback = Callable[[int, int], None]
"""Told ``(steps done, steps in all)`` after each step of a long job."""

DELAY = 0.5
"""Seconds a job runs before its bar appears: below that, a bar only flickers."""


class ProgressBar:
    """A :data:`ProgressCallback` drawing a transient rich bar on a terminal's stderr; a context
    manager, so the bar is removed however the job ends."""

    def __init__(
        self,
        description: str,
        *,
        stream: TextIO | None = None,
        delay: float = DELAY,
        console: Console | None = None,
    ) -> None:
        """``console`` overrides the terminal check (for tests); otherwise the bar draws on
        ``stream`` (stderr) only when it is a TTY."""
        target = stream if stream is not None else sys.stderr
        self.enabled = console is not None or target.isatty()
        self._console = console or Console(file=target, stderr=stream is None)
        self._description = description
        self._delay = delay
        self._started = time.monotonic()
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressBar:
        self._started = time.monotonic()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def __call__(self, done: int, total: int) -> None:
        """Show ``done`` of ``total`` (once the delay has passed and when a person is watching)."""
        if not self.enabled:
            return
        if self._progress is None:
            if time.monotonic() - self._started < self._delay or done >= total:
                return
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=total)
        assert self._task is not None
        self._progress.update(self._task, completed=done, total=total)

    @property
    def shown(self) -> bool:
        """Whether the bar was drawn at all."""
        return self._progress is not None

    def close(self) -> None:
        """Remove the bar (it is transient) if it was drawn."""
        if self._progress is not None:
            self._progress.stop()
