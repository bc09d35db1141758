"""Thin wrapper: `python train.py ARGS` is `ecgnet train ARGS` (see `python train.py --help`)."""
import sys

from ecgnet.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("train", prog="python train.py"))
