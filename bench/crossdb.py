"""The shipped models on recordings of MIT-BIH DS2 and of another database (the shared SVDB records: 128 Hz, other
leads), scored beat by beat against their reference annotations by ``ecgnet score`` (150 ms matching, EC57).

    python bench/crossdb.py [--mitdb ../shared/data/mitdb] [--svdb ../shared/data/svdb] [--models mitbih-rr mitbih]
                            [--workers 2] [--out log/crossdb]

Prints one row per database and model (gross statistics; per record in OUT/<db>-<model>/score.json) and
writes bench/results/crossdb.json. DS2 is where mitbih-rr's recipe was chosen; SVDB no model here has seen.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import ROOT, save, table

from ecgnet.cli import main as ecgnet
from ecgnet.signals.records import DS2


def run(records: list[Path], model: str, out: Path, workers: int) -> dict:
    start = time.perf_counter()
    code = ecgnet(["score", *map(str, records), "--checkpoint", model, "--out", str(out), "--workers", str(workers)])
    result = json.loads((out / "score.json").read_text())
    g = result["gross"]
    row = {"model": model, "records": len(result["records"]), "beats": g["reference_beats"], "accuracy": round(g["accuracy"], 1),
           "S Se/+P": f"{g['per_class']['S']['se']:.1f} / {g['per_class']['S']['ppv']:.1f}",
           "V Se/+P": f"{g['per_class']['V']['se']:.1f} / {g['per_class']['V']['ppv']:.1f}",
           "N called S / V (%)": f"{g['n_called_s']:.2f} / {g['n_called_v']:.2f}",
           "detection Se/+P": f"{g['detection']['se']:.2f} / {g['detection']['ppv']:.2f}", "wall_s": round(time.perf_counter() - start, 1)}
    return row | {"exit_code": code}


def main() -> None:
    shared = ROOT.parent / "shared" / "data"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mitdb", type=Path, default=shared / "mitdb")
    parser.add_argument("--svdb", type=Path, default=shared / "svdb")
    parser.add_argument("--models", nargs="+", default=["mitbih-rr", "mitbih"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "log" / "crossdb")
    args = parser.parse_args()
    databases = {"MIT-BIH DS2": [args.mitdb / r for r in DS2], "SVDB (shared, 128 Hz)": sorted(args.svdb.glob("*.hea"))}
    rows = []
    for db, records in databases.items():
        for model in args.models:
            rows.append({"database": db} | run(records, model, args.out / f"{db.split()[0].lower()}-{model}", args.workers))
    print(table(rows, ["database", "model", "records", "beats", "accuracy", "S Se/+P", "V Se/+P", "N called S / V (%)",
                       "detection Se/+P", "wall_s"]))
    print(f"wrote {save('crossdb', {'rows': rows})}")


if __name__ == "__main__":
    main()
