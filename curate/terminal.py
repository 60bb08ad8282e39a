"""What the command line draws while a long command runs: a rich progress display on stderr.

Part of the command line, not the library: :class:`RichReporter` implements
:class:`curate.run.progress.Reporter`. It writes to a duplicate of the terminal's stderr taken when it is
made, so it keeps drawing while datatrove's task logs are redirected to a file.
"""

from __future__ import annotations

import os
import time
from typing import Any

from curate.run.progress import Snapshot


class RichReporter:
    """Per stage: a bar over tasks (or input bytes for stage 1), records, MB, docs/s and elapsed time."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._stream = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
        self.console = Console(file=self._stream, stderr=False)
        self.progress = Progress(
            TextColumn("[bold]{task.description:<38}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.task: Any = None
        self.total_bytes: int | None = None
        self.started = time.monotonic()
        self.records = 0
        self.progress.start()

    def stage(self, name: str, tasks: int, total_bytes: int | None) -> None:
        """A stage starts: a new bar."""
        self.total_bytes = total_bytes
        total = total_bytes if total_bytes else tasks
        self.task = self.progress.add_task(name, total=total, detail=f"0/{tasks} tasks")

    def update(self, snapshot: Snapshot) -> None:
        """Move the bar and refresh the numbers."""
        if self.task is None:
            return
        self.records = max(self.records, snapshot.records)
        done = snapshot.bytes if self.total_bytes else snapshot.tasks_done
        detail = (
            f"{snapshot.tasks_done}/{snapshot.tasks} tasks · {snapshot.records:,} records · "
            f"{snapshot.bytes / 1e6:,.1f} MB · {snapshot.docs_per_s:,.0f} docs/s"
        )
        self.progress.update(self.task, completed=min(done, self.progress.tasks[-1].total or done), detail=detail)

    def end(self, name: str, summary: str) -> None:
        """Complete the stage's bar."""
        if self.task is not None:
            t = self.progress.tasks[-1]
            detail = t.fields.get("detail", "")
            # a stage that reported figures keeps them; one that did not shows its summary
            shown = f"{detail} · done" if "records" in detail else (summary or detail)
            self.progress.update(self.task, completed=t.total, detail=shown)
            self.task = None

    def close(self) -> None:
        """Stop drawing, with the overall figures: stages, records, time, docs/s."""
        self.progress.stop()
        if self.progress.tasks:
            elapsed = time.monotonic() - self.started
            rate = f" · {self.records / elapsed:,.0f} records/s" if self.records and elapsed > 0 else ""
            self.console.print(
                f"[bold]overall[/bold]: {len(self.progress.tasks)} stages · {self.records:,} records · {elapsed:,.1f} s{rate}"
            )
        self._stream.flush()
