"""List the models shipped with ecgnet, with the figures measured when they were made.

    ecgnet models
    ecgnet models --json

Use one by name wherever --checkpoint is taken: ecgnet predict --checkpoint mitbih ...
Model cards: docs/models/.
"""
from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the full cards as JSON")


def run(args: argparse.Namespace) -> int:
    from ..cards import shipped_models

    models = shipped_models()
    if args.json:
        print(json.dumps({name: {k: v for k, v in card.items() if k != "split"} for name, card in models.items()}, indent=2))
        return 0
    width = max([len("name"), *map(len, models)]) + 2
    print(f"{'name':<{width}}{'task':<8}{'model':<12}{'classes':<16}{'test':<44}{'T':>6}")
    for name, card in sorted(models.items()):
        print(f"{name:<{width}}{card['task']:<8}{card['model_name']:<12}{','.join(card['class_names']):<16}"
              f"{card.get('headline', ''):<44}{card.get('calibration', {}).get('temperature', 1.0):>6.2f}")
        print(f"{'':<{width}}{card.get('description', '')}")
    return 0
