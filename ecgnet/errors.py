"""Errors a user can cause and fix."""
from __future__ import annotations

from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class EcgnetError(Exception):
    """A problem with the user's input (file, config, checkpoint, arguments).

    The message names what is wrong, where, and how to fix it. CLIs print it as one
    line and exit with code 2; the full traceback is shown only with ``--debug``.
    """


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C or SIGTERM after saving; ``epoch`` epochs are in ``run_dir``/last.pt."""

    def __init__(self, run_dir: Path, epoch: int) -> None:
        super().__init__(f"interrupted after epoch {epoch}")
        self.run_dir = run_dir
        self.epoch = epoch
        self.resume_command = f"ecgnet train --resume {run_dir}"  # entry points set their own spelling
