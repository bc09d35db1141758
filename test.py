"""Thin wrapper: `python test.py ARGS` is `ecgnet test ARGS` (see `python test.py --help`)."""
import sys

from ecgnet.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("test", prog="python test.py"))
