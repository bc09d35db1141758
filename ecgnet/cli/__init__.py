"""The ``ecgnet`` command: one subcommand per job; each module parses, calls the library, prints.

Entry points (this package, the top-level scripts, bench/) are the only places that
change process-wide state: logging handlers, thread count, allocator, determinism.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Callable, Sequence

from .. import __version__
from ..errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, EcgnetError, TrainingInterrupted

COMMANDS = {
    "train": "train a model (and test its best checkpoint)",
    "test": "evaluate a checkpoint on its test set",
    "predict": "label beat files or whole recordings",
    "prepare": "build beat CSVs from PhysioNet records (mitdb, ptbdb, ptbxl)",
    "store": "write the training data as a sharded beat store (for data larger than memory, and DDP)",
    "tune": "search hyper-parameters with Optuna (validation macro-F1, median pruning)",
    "export": "export a model as ONNX or as a safetensors model file",
    "models": "list the shipped pretrained models",
    "score": "score beat labels against reference annotations (bxb / EC57)",
    "app": "start the web page (Streamlit)",
}  # name -> one line of help; each is the module ecgnet.cli.<name>, imported only when run


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


def command_module(name: str):
    """The module of subcommand ``name`` (imported here: ``ecgnet --help`` and each command load only their own code)."""
    return importlib.import_module(f".{name}", __name__)


def _subcommand_parser(name: str, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    module = command_module(name)
    module.add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.set_defaults(run=module.run, prog=parser.prog)
    return parser


def build_parser(prog: str = "ecgnet", commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``ecgnet`` parser: every subcommand listed, the arguments of ``commands`` (default: all) added."""
    parser = argparse.ArgumentParser(prog=prog, description="ECG heartbeat classification (Kachuee et al. 2018) in PyTorch.")
    parser.add_argument("--version", action="version", version=f"ecgnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_line in COMMANDS.items():
        if commands is None or name in commands:
            _subcommand_parser(name, sub.add_parser(name, help=help_line, description=command_module(name).__doc__,
                                                    formatter_class=argparse.RawDescriptionHelpFormatter))
        else:
            sub.add_parser(name, help=help_line)
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
        chosen = next((a for a in args if not a.startswith("-")), None)
        parsed = build_parser(commands=[chosen] if chosen in COMMANDS else []).parse_args(args)
        return parsed.run(parsed)
    return run_cli(dispatch, argv)


def run_command(name: str, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """One subcommand as a program of its own (the top-level train.py, test.py, predict.py)."""
    def dispatch(args: list[str]) -> int:
        parser = argparse.ArgumentParser(prog=prog, description=command_module(name).__doc__,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        parsed = _subcommand_parser(name, parser).parse_args(args)
        return parsed.run(parsed)
    return run_cli(dispatch, argv)
