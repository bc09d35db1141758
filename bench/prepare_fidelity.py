"""Fidelity of `python -m ecgnet.data.prepare` against the reference Kaggle-layout CSVs.

    python bench/prepare_fidelity.py [--mitdb ../shared/data/mitdb] [--ptbdb ../shared/data/ptbdb]

Runs prepare (annotation positions, --split random --seed 0; and ptbdb) into a temp
folder and compares its rows with the reference files as sets of beats: how many rows
match a reference row to 1e-6, the largest difference, and whether the split agrees.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import ROOT, data_dir, save, table

from ecgnet.data.beatfiles import read_beats
from ecgnet.data.datasets import find_file
from ecgnet.data.prepare import prepare


def compare(ours: np.ndarray, reference: np.ndarray) -> tuple[int, float, np.ndarray]:
    """Rows of ``ours`` matched to ``reference`` rows by a coarse key, then checked to 1e-6."""
    keys = {}
    for i, row in enumerate(reference):
        keys.setdefault(np.round(row[:24], 3).tobytes(), []).append(i)
    match = np.full(len(ours), -1)
    largest = 0.0
    for i, row in enumerate(ours):
        for j in keys.get(np.round(row[:24], 3).tobytes(), []):
            d = float(np.abs(reference[j] - row).max())
            if d <= 1e-6:
                match[i] = j
                largest = max(largest, d)
                break
    return int((match >= 0).sum()), largest, match


def main() -> None:
    shared = ROOT.parent / "shared" / "data"
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mitdb", default=str(shared / "mitdb"))
    p.add_argument("--ptbdb", default=str(shared / "ptbdb"))
    args = p.parse_args()
    ref_dir = data_dir()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        prepare("mitdb", args.mitdb, tmp, split="random", seed=0)
        prepare("ptbdb", args.ptbdb, tmp)
        for stems in (("mitbih_train", "mitbih_test"), ("ptbdb_normal", "ptbdb_abnormal")):
            ours = {s: read_beats(Path(tmp) / f"{s}.csv", use_cache=False) for s in stems}
            refs = {s: read_beats(find_file(ref_dir, s)) for s in stems}
            all_ref = np.concatenate([refs[s][0] for s in stems])
            ref_file = np.concatenate([[k] * len(refs[s][1]) for k, s in enumerate(stems)])
            all_ref_labels = np.concatenate([refs[s][1] for s in stems])
            for k, s in enumerate(stems):
                x, y = ours[s]
                matched, largest, where = compare(x, all_ref)
                ok = where >= 0
                rows.append({"file": s, "rows": len(y), "reference_rows": len(refs[s][1]), "matched_1e-6": matched,
                             "largest_diff": f"{largest:.1e}", "same_file": int((ref_file[where[ok]] == k).sum()),
                             "same_label": int((all_ref_labels[where[ok]] == y[ok]).sum())})
                print(rows[-1], flush=True)
    print("\nprepare vs reference CSVs (rows compared as sets; same_file = matched rows that landed in the same split/file)\n")
    print(table(rows, ["file", "rows", "reference_rows", "matched_1e-6", "largest_diff", "same_file", "same_label"]))
    print(f"\nwrote {save('prepare_fidelity', {'rows': rows})}")


if __name__ == "__main__":
    main()
