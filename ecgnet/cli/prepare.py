"""Build Kaggle-layout beat CSVs from PhysioNet records with the paper's recipe.

    ecgnet prepare mitdb --src ../shared/data/mitdb --out data/ --split random
    ecgnet prepare mitdb --src ../shared/data/mitdb --out data/ds --split interpatient
    ecgnet prepare ptbdb --src ../shared/data/ptbdb --out data/
    ecgnet prepare mitdb --download --src data/raw/mitdb --out data/   # fetch with wfdb first (internet)

mitdb: first channel, annotation beat positions (or --positions gqrs|xqrs|paper), AAMI
labels; --split random = stratified 80/20 (seeded, intra-patient like the Kaggle set),
--split interpatient = de Chazal DS1 (train) / DS2 (test), paced records excluded.
ptbdb: lead II by name, R peaks by the paper's rule, 'Reason for admission' decides the
file (Healthy control -> ptbdb_normal, Myocardial infarction -> ptbdb_abnormal).
Each CSV gets a side file NAME_index.csv with the record and sample of every row.
"""
from __future__ import annotations

import argparse

from ..constants import DETECTORS
from ..prepare import DATABASES, SPLITS

HELP = "build beat CSVs from PhysioNet records (mitdb, ptbdb)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("database", choices=DATABASES)
    p.add_argument("--src", required=True, help="folder with the WFDB records")
    p.add_argument("--out", default="data", help="folder for the CSVs (default data/)")
    p.add_argument("--split", choices=SPLITS, default=SPLITS[0], help="mitdb only")
    p.add_argument("--seed", type=int, default=0, help="seed of the random split")
    p.add_argument("--positions", choices=("annotations",) + DETECTORS, default="annotations", help="mitdb beat positions")
    p.add_argument("--download", action="store_true", help="fetch the database from PhysioNet with wfdb into --src first")


def run(args: argparse.Namespace) -> int:
    from ..prepare import prepare

    if args.download:
        import wfdb
        wfdb.dl_database(args.database, dl_dir=str(args.src))
    prepare(args.database, args.src, args.out, args.split, args.seed, args.positions)
    return 0
