"""Re-create the shipped record-level model 'ptbxl-mi' (ecgnet/weights/) and its model card (docs/models/ptbxl-mi.md).

    python tools/make_record_weights.py --ptbxl ../shared/data/ptbxl

PTB-XL is prepared into data/ptbxl when missing (``ecgnet prepare ptbxl``); the model is trained with the recipe chosen
by bench/ptbxl_mi.py on fold 8 (seed 0): folds 1-7 train, fold 8 selects the epoch and the thresholds, fold 9 is reported.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ecgnet.cli import configure_logging
from ecgnet.data.prepare import prepare
from ecgnet.runtime import configure_process
from ecgnet.serving.shipping import ship_record_model
from ecgnet.training.record_training import RecordTrainingConfig, train_record_model

ROOT = Path(__file__).resolve().parents[1]
RECIPE = {"mode": "finetune", "pooling": "concat", "epochs": 15, "patience": 5, "seed": 0}  # bench/ptbxl_mi.py: best fold-8 AUC
DESCRIPTION = ("Myocardial infarction vs normal per recording (PTB-XL): the shipped 'mitbih' trunk, fine-tuned, reads every beat "
               "of each lead (cut at lead II's R peaks); each lead's beats are averaged, the 12 leads' features set side by "
               "side with which leads are present, and a small head gives p_MI. Trained on PTB-XL folds 1-7 (patients never "
               "in folds 8-9), with 30% of the records shown as lead II alone, so the same weights judge lead II recordings.")
INTENDED_USE = ("Research on record-level MI screening of resting ECGs: 'ecgnet predict --checkpoint ptbxl-mi --record REC'. "
                "12-lead WFDB records are judged on all leads, others with lead II on lead II alone, each at its own threshold "
                "(chosen on fold 8); figures per record and per patient on fold 9, patients never seen in training or selection.")


def lead_sets(card: dict) -> dict:
    """The card's figures per lead set (without the bundled-example check)."""
    return {k: v for k, v in card["figures"].items() if k != "bundled"}


def model_card(card: dict) -> str:
    """docs/models/ptbxl-mi.md from the shipped card."""
    lines = [f"# Model card: `{card['name']}`", "", card["description"], "",
             f"- **Use it**: `ecgnet predict --checkpoint {card['name']} --record REC --out OUT` (summary.json; summary.csv for "
             f"several: `record_class`, `p_MI`); files `ecgnet/weights/{card['name']}.safetensors` + `.json` (SHA-256 "
             f"`{card['sha256'][:16]}…`, checked at every load).",
             f"- **Intended use**: {card['intended_use']}", f"- **Limits**: {card['limits']}",
             f"- **Model**: `{card['model_name']}` {json.dumps(card['model_args'])}; best epoch {card['epoch']} by fold-8 ROC AUC.",
             f"- **Training data**: `{card['training_data']['folder']}` from `ecgnet prepare ptbxl` "
             f"({card['split']['n_train']} records of folds 1-7; {card['split']['n_val']} of fold 8; {card['split']['n_test']} of fold 9).",
             "", "## Figures (fold 9: 55 MI / 110 NORM records of patients never seen; thresholds from fold 8)", "",
             "| leads | threshold | level | ROC AUC | sensitivity | specificity | PPV |", "|---|---|---|---|---|---|---|"]
    for leads, f in lead_sets(card).items():
        for level in ("record", "patient"):
            t = f["test"][level]
            lines.append(f"| {leads} | {f['threshold']:.3f} | {level} | {t['roc_auc']:.3f} | {100 * t['sensitivity']:.1f}% | "
                         f"{100 * t['specificity']:.1f}% | {100 * t['ppv']:.1f}% |")
    lines += ["", "Sensitivity per MI location (records, fold 9): " + "; ".join(
        f"{leads}: " + ", ".join(f"{k} {100 * v['sensitivity']:.0f}% (n={v['n']})" for k, v in f["test"]["sensitivity_by_location"].items() if v["n"])
        for leads, f in lead_sets(card).items()) + ".",
              "", f"Bundled example (`{card['figures']['bundled']['record']}`, checked by `tests/test_shipped.py`): "
              + json.dumps({k: v for k, v in card["figures"]["bundled"].items() if k != "record"}) + ".",
              "", "## Config", "", "```json", json.dumps(card["config"], indent=1), "```", "",
              "Re-create: `python tools/make_record_weights.py --ptbxl DIR`.", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ptbxl", default="../shared/data/ptbxl", help="the PTB-XL folder (ptbxl_database.csv, records100/)")
    p.add_argument("--data-dir", default=str(ROOT / "data" / "ptbxl"))
    args = p.parse_args()
    configure_process(0, "cpu")
    configure_logging()
    data_dir = Path(args.data_dir)
    if not (data_dir / "ptbxl_index.csv").exists():
        prepare("ptbxl", args.ptbxl, data_dir, workers=2)
    ckpt = train_record_model(RecordTrainingConfig(data_dir=str(data_dir), **RECIPE))
    path = ship_record_model(ckpt, "ptbxl-mi", DESCRIPTION, INTENDED_USE, data_dir, "data/ptbxl")
    card = json.loads(path.with_suffix(".json").read_text())
    (ROOT / "docs" / "models" / "ptbxl-mi.md").write_text(model_card(card))
    print(f"ptbxl-mi: {card['headline']} -> {path.relative_to(ROOT)}, docs/models/ptbxl-mi.md")


if __name__ == "__main__":
    main()
