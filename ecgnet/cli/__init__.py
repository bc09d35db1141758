"""The ``ecgnet`` command: one subcommand per job; each module parses, calls the library, prints.

Entry points (this package, the top-level scripts, bench/) are the only places that
change process-wide state: logging handlers, thread count, allocator, determinism.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Sequence

from .. import __version__
from ..errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, EcgnetError, TrainingInterrupted
from . import app, export, models, predict, prepare, score, store, test, train, tune

COMMANDS = {"train": train, "test": test, "predict": predict, "prepare": prepare, "store": store, "tune": tune,
            "export": export, "models": models, "score": score, "app": app}


class _ConsoleHandler(logging.Handler):
    """Library log records as plain lines: info to stdout, warnings and errors to stderr.

    The stream is looked up per record, so a redirected sys.stdout (tests) is honoured.
    """

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        stream.write(self.format(record) + "\n")
        stream.flush()


def configure_logging(level: int = logging.INFO) -> None:
    """Send the library's ``ecgnet`` log records to the console (idempotent)."""
    logger = logging.getLogger("ecgnet")
    for handler in [h for h in logger.handlers if isinstance(h, _ConsoleHandler)]:
        logger.removeHandler(handler)
    handler = _ConsoleHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


def _subcommand_parser(name: str, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    module = COMMANDS[name]
    module.add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.set_defaults(run=module.run, prog=parser.prog)
    return parser


def build_parser(prog: str = "ecgnet") -> argparse.ArgumentParser:
    """The ``ecgnet`` parser with every subcommand."""
    parser = argparse.ArgumentParser(prog=prog, description="ECG heartbeat classification (Kachuee et al. 2018) in PyTorch.")
    parser.add_argument("--version", action="version", version=f"ecgnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        _subcommand_parser(name, sub.add_parser(name, help=module.HELP, description=module.__doc__,
                                                formatter_class=argparse.RawDescriptionHelpFormatter))
    return parser


def run_cli(main: Callable[[list[str]], int], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` as a program: console logging, user errors as one line with exit code 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("ECGNET_DEBUG") == "1"
    configure_logging()
    try:
        return main(argv)
    except EcgnetError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # the reader went away (e.g. '| head'): nothing left to say to it
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except TrainingInterrupted as e:
        done = f"last.pt holds epoch {e.epoch}" if e.epoch else "no epoch was completed"
        print(f"\ninterrupted during epoch {e.epoch + 1}; {done}. Resume with: {e.resume_command}", file=sys.stderr)
        return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """``ecgnet COMMAND ...``"""
    def dispatch(args: list[str]) -> int:
        parsed = build_parser().parse_args(args)
        return parsed.run(parsed)
    return run_cli(dispatch, argv)


def run_command(name: str, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """One subcommand as a program of its own (the top-level train.py, test.py, predict.py)."""
    def dispatch(args: list[str]) -> int:
        parser = argparse.ArgumentParser(prog=prog, description=COMMANDS[name].__doc__,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        parsed = _subcommand_parser(name, parser).parse_args(args)
        return parsed.run(parsed)
    return run_cli(dispatch, argv)
