"""Thin wrapper: `python predict.py ARGS` is `ecgnet predict ARGS` (see `python predict.py --help`)."""
import sys

from ecgnet.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("predict", prog="python predict.py"))
