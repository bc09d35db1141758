"""Usage:

    ecgnet prepare mitdb --src ../shared/data/mitdb --out data/ --split random
    ecgnet prepare mitdb --src ../shared/data/mitdb --out data/ds --split interpatient
    ecgnet prepare ptbdb --src ../shared/data/ptbdb --out data/
    ecgnet prepare ptbxl --src ../shared/data/ptbxl --out data/ptbxl --leads all --workers 2
    ecgnet prepare mitdb --download --src data/raw/mitdb --out data/   # fetch with wfdb first (internet)

"""
from __future__ import annotations

import argparse

from ..constants import DETECTORS
from ..data.prepare import DATABASES, SPLITS, UNMATCHED
from ..data.prepare import __doc__ as RECIPE
from ..data.ptbxl import LEAD_CHOICES

__doc__ += RECIPE  # what each database's recipe does: the library module's own account


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("database", choices=DATABASES)
    p.add_argument("--src", required=True, help="folder with the WFDB records")
    p.add_argument("--out", default="data", help="folder for the CSVs (default data/)")
    p.add_argument("--split", choices=SPLITS, default=SPLITS[0], help="mitdb only")
    p.add_argument("--seed", type=int, default=0, help="seed of the random split")
    p.add_argument("--positions", choices=("annotations",) + DETECTORS, default="annotations", help="mitdb beat positions")
    p.add_argument("--unmatched", choices=UNMATCHED, default=UNMATCHED[0],
                   help="with detected --positions: detections no annotated beat matches are left out (drop) or labelled Q (q)")
    p.add_argument("--before-r", type=float, default=0.0, metavar="SECONDS",
                   help="mitdb: start each beat this long before its R peak, to include the P wave (default 0: the paper's cut)")
    p.add_argument("--workers", type=int, default=1, help="records read in parallel processes (output is the same for any count)")
    p.add_argument("--leads", choices=LEAD_CHOICES, default="all", help="ptbxl: beats of lead II only or of all 12 leads (default all)")
    p.add_argument("--second-lead", action="store_true",
                   help="mitdb --split interpatient: also cut each training record's second channel (V1, V2, V4 or V5) as a "
                        "recording of its own, so that a model learns more than one lead; the test records keep the first")
    p.add_argument("--download", action="store_true", help="fetch the database from PhysioNet with wfdb into --src first")


def run(args: argparse.Namespace) -> int:
    from ..data.prepare import prepare

    if args.download:
        import wfdb
        wfdb.dl_database(args.database, dl_dir=str(args.src))
    prepare(args.database, args.src, args.out, args.split, args.seed, args.positions, args.before_r, args.workers, args.unmatched,
            args.leads, args.second_lead)
    return 0
