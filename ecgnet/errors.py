"""Errors a user can cause and fix, and the CLI wrapper that reports them in one line."""
from __future__ import annotations

import os
import sys
from typing import Callable, Sequence


class EcgnetError(Exception):
    """A problem with the user's input (file, config, checkpoint, arguments).

    The message names what is wrong, where, and how to fix it. CLIs print it as one
    line and exit with code 2; the full traceback is shown only with ``--debug``.
    """


EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run a CLI ``main(argv)``; turn EcgnetError into one line on stderr and exit code 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("ECGNET_DEBUG") == "1"
    try:
        return main(argv)
    except EcgnetError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
