"""A progress bar for work over a large file: bytes done of a known total, on standard error.

Shown only where someone watches (standard error is a terminal) and the file is large enough to
take a while; elsewhere (CI logs, pipes, small files) nothing is printed. The bar is drawn by
``rich`` and disappears when the work ends, leaving the command's own output alone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Below this a file is read in well under a second: a bar would only flicker.
SHOWN_FROM = 8 * 1024 * 1024


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], object]]:
    """A function to call with the number of bytes each step did, which advances a bar of
    ``total`` bytes on a terminal's standard error, or does nothing."""
    if total < SHOWN_FROM or not sys.stderr.isatty():
        yield lambda done: None
        return
    # Imported here: rich takes a twentieth of a second to import, which runs without a
    # terminal (build machines) need not pay.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.advance(task, done)
