"""Start-up and end-to-end wall time of the ecgnet command, as a user meets it (#36).

    python bench/startup.py [--mitdb ../shared/data/mitdb] [--repeats 3] [--checkout DIR]

Each command runs as ``python -m ecgnet ...`` in a fresh process, ``--repeats`` times; the table gives the median
wall time (warm file cache). ``--checkout DIR`` times another checkout of ecgnet (e.g. a git worktree of an older
commit) the same way, for a before/after table. The machine must be quiet: nothing else running.
Results: bench/results/startup.json.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, save, table


def commands(mitdb: Path, out: Path) -> dict[str, list[str]]:
    samples = str(ROOT / "samples" / "mitbih_beats.csv")
    return {
        "import ecgnet.cli": ["-c", "import ecgnet.cli"],
        "ecgnet --help": ["-m", "ecgnet", "--help"],
        "ecgnet predict samples/mitbih_beats.csv": ["-m", "ecgnet", "predict", samples],
        "ecgnet predict --backend torch samples/mitbih_beats.csv": ["-m", "ecgnet", "predict", "--backend", "torch", samples],
        "ecgnet predict --record mitdb/233 --out o": ["-m", "ecgnet", "predict", "--record", str(mitdb / "233"), "--out", str(out / "233")],
        "ecgnet predict --record mitdb/ --workers 2 (48 records)": ["-m", "ecgnet", "predict", "--record", str(mitdb), "--out",
                                                                     str(out / "all"), "--workers", "2"],
    }


def wall(args: list[str], checkout: Path) -> float:
    """Seconds one command takes from process start to exit."""
    env = os.environ | {"PYTHONPATH": str(checkout)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=checkout, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0,):
        raise SystemExit(f"{' '.join(args)} failed in {checkout}: {done.stderr[-500:]}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mitdb", default=str(ROOT.parent / "shared" / "data" / "mitdb"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--checkout", action="append", default=[], help="another ecgnet checkout to time beside this one")
    p.add_argument("--skip", nargs="*", default=[], help="commands to leave out (by their name's first words)")
    args = p.parse_args()
    checkouts = {"this checkout": ROOT} | {f"checkout {c}": Path(c).resolve() for c in args.checkout}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, command in commands(Path(args.mitdb).resolve(), Path(tmp)).items():
            if any(name.startswith(s) for s in args.skip):
                continue
            row = {"command": name}
            for label, checkout in checkouts.items():
                wall(command, checkout)  # warm the file cache
                row[label] = f"{statistics.median(wall(command, checkout) for _ in range(args.repeats)):.2f} s"
            rows.append(row)
            print(row, flush=True)
    print(table(rows, ["command", *checkouts]))
    save("startup", {"rows": rows, "repeats": args.repeats, "checkouts": {k: str(v) for k, v in checkouts.items()}})


if __name__ == "__main__":
    main()
