"""Record-model recipes judged on another database: each trained on MIT-BIH DS1 as the shipped `mitbih-rr` is
(config/interpatient.json: 5 folds of patients pooled with the linear rhythm model), chosen on the shared SVDB
records (128 Hz, ECG1, patients and a hospital none of them has seen), DS2 reported beside.

    python bench/generalise.py [--variants first-lead two-leads student] [--seeds 0 1 2] [--workers 2]
                               [--mitdb ../shared/data/mitdb] [--svdb ../shared/data/svdb]

Each (variant, seed) is trained once into log/generalise/<variant>-s<seed>/ (kept and reused; --retrain to train
again) and scored by `ecgnet score` on every record as `predict --record` labels it (default detector, S calls in
irregular rhythm made N). `--shipped` scores the shipped model as the first-lead row of seed 0 (it is that run); pools
that lack the temperature fitted out of fold (the shipped one) get it first, saved beside.
Prints mean ± sd over seeds per variant and database and writes bench/results/generalise.json (runs of variants and
seeds not measured this time are kept from the last file).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import RESULTS, ROOT, mean_sd, save, table

from ecgnet.cli import configure_logging
from ecgnet.cli import main as ecgnet
from ecgnet.config import config_from_dict, load_config
from ecgnet.constants import MITBIH
from ecgnet.data.datasets import load_files
from ecgnet.data.prepare import prepare
from ecgnet.models.checkpoint import save_checkpoint
from ecgnet.models.pretrained import resolve_checkpoint
from ecgnet.runtime import configure_process
from ecgnet.signals.records import DS2
from ecgnet.training.assemble import fold_members
from ecgnet.training.crossval import pool_calibration, train_folds
from ecgnet.training.distill import train_student

LOG = ROOT / "log" / "generalise"
PREPARE = {"split": "interpatient", "seed": 0, "positions": "gqrs", "unmatched": "q", "before_r_s": 0.25}  # mitbih-rr's
VARIANTS = {  # training data (a folder under data/, prepared with PREPARE and these keys) and config keys
    "first-lead": {"data": "ds-wide-gqrs", "prepare": {}, "set": {}},
    "two-leads": {"data": "ds-wide-gqrs-2lead", "prepare": {"second_lead": True}, "set": {}},
    # one network learning the shipped pool's five (ecgnet.training.distill), pooled with the linear model alike
    "student": {"data": "ds-wide-gqrs", "prepare": {}, "set": {}, "config": "interpatient_student.json"},
    # the same with 16 channels in place of 32: a quarter of the multiply-adds per beat (#36's record throughput)
    "student-small": {"data": "ds-wide-gqrs", "prepare": {}, "set": {"model": "kachuee_rrt_small"},
                      "config": "interpatient_student.json"},
}
METRICS = ("accuracy", "S Se", "S +P", "V Se", "V +P", "N→S %", "N→V %", "ECE")


def training_data(variant: dict, args) -> Path:
    out = ROOT / "data" / variant["data"]
    if not (out / "mitbih_train.csv").exists():
        prepare("mitdb", args.mitdb, out, workers=args.workers, **PREPARE, **variant["prepare"])
    return out


def trained(name: str, seed: int, args) -> Path:
    """The pooled model of ``name`` trained with ``seed`` (trained now unless a finished run is kept), calibrated."""
    variant = VARIANTS[name]
    data_dir = training_data(variant, args)
    if name == "first-lead" and seed == 0 and args.shipped:
        return calibrated("mitbih-rr", data_dir, LOG / "shipped-mitbih-rr" / "best.pt")
    best = LOG / f"{name}-s{seed}" / "best.pt"
    if not best.exists() or args.retrain:
        cfg = config_from_dict({"data_dir": str(data_dir), "seed": seed, "log_dir": str(LOG), "run_name": f"{name}-s{seed}"}
                               | variant["set"], source="generalise",
                               base=load_config(ROOT / "config" / variant.get("config", "interpatient.json")))
        start = time.perf_counter()
        if cfg.teacher:
            train_student(cfg, overwrite=True)
        else:
            train_folds(cfg, cfg.folds, reuse=not args.retrain, overwrite=True)
        print(f"{name} seed {seed}: trained in {time.perf_counter() - start:.0f} s")
    return calibrated(str(best), data_dir, best)


def calibrated(model: str, data_dir: Path, out: Path) -> Path:
    """``model`` (a pool of ``train_folds``, trained on ``data_dir``) saved to ``out`` with its temperature fitted out of
    fold (``crossval.pool_calibration``), for pools made before ``train_folds`` fitted it (the shipped one)."""
    checkpoint = resolve_checkpoint(model)
    if "ece_out_of_fold" in checkpoint["calibration"]:
        return out
    cfg = config_from_dict(checkpoint["config"], source=model)
    full = load_files(data_dir, MITBIH.train_stems, MITBIH)
    members = fold_members(checkpoint)
    held = [np.flatnonzero(np.isin(full.records, m["split"]["val_records"])) for m in members]
    checkpoint["calibration"] = pool_calibration(members, held, full, np.arange(len(full)), cfg, data_dir)
    checkpoint["split"] = checkpoint["split"] | {"data_dir": str(data_dir)}  # a shipped card names the user's folder
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, {k: v for k, v in checkpoint.items() if k != "card"})
    return out


def scored(model: Path, records: list[Path], out: Path, workers: int) -> dict:
    """The gross statistics of ``ecgnet score`` for ``model`` on ``records`` (kept in ``out``)."""
    if not (out / "score.json").exists():
        ecgnet(["score", *map(str, records), "--checkpoint", str(model), "--out", str(out), "--workers", str(workers)])
    g = json.loads((out / "score.json").read_text())["gross"]
    c = g["per_class"]
    return {"accuracy": g["accuracy"], "S Se": c["S"]["se"], "S +P": c["S"]["ppv"], "V Se": c["V"]["se"], "V +P": c["V"]["ppv"],
            "N→S %": g["n_called_s"], "N→V %": g["n_called_v"], "ECE": g["ece"]}


def kept_runs(new: list[dict]) -> list[dict]:
    """The runs of the last results file that ``new`` does not measure again (a bench of one variant keeps the others)."""
    path = RESULTS / "generalise.json"
    if not path.exists():
        return []
    fresh = {(r["variant"], r["seed"], r["database"]) for r in new}
    return [r for r in json.loads(path.read_text())["runs"] if (r["variant"], r["seed"], r["database"]) not in fresh]


def main() -> None:
    shared = ROOT.parent / "shared" / "data"
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--mitdb", type=Path, default=shared / "mitdb")
    parser.add_argument("--svdb", type=Path, default=shared / "svdb")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shipped", action="store_true", help="the shipped mitbih-rr stands for first-lead seed 0")
    parser.add_argument("--retrain", action="store_true")
    args = parser.parse_args()
    configure_logging()
    configure_process(num_threads=0)
    databases = {"SVDB (choice)": sorted(args.svdb.glob("*.hea")), "DS2 (reported)": [args.mitdb / r for r in DS2]}
    runs, rows = [], []
    for name in args.variants:
        for seed in args.seeds:
            model = trained(name, seed, args)
            for db, records in databases.items():
                out = LOG / "scores" / f"{name}-s{seed}" / db.split()[0].lower()
                runs.append({"variant": name, "seed": seed, "database": db} | scored(model, records, out, args.workers))
    runs = kept_runs(runs) + runs
    for name in dict.fromkeys(r["variant"] for r in runs):
        for db in databases:
            mine = [r for r in runs if r["variant"] == name and r["database"] == db]
            rows.append({"variant": name, "database": db, "seeds": len(mine)}
                        | {m: mean_sd([r[m] for r in mine], 3 if m == "ECE" else 1) for m in METRICS})
    print(table(rows, ["database", "variant", "seeds", *METRICS]))
    print(f"wrote {save('generalise', {'runs': runs, 'rows': rows})}")


if __name__ == "__main__":
    main()
