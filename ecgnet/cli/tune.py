"""Search hyper-parameters with Optuna on the validation split (the test file is never read).

    ecgnet tune --study kachuee --n-trials 40 --epochs 30          # config/config.json + config/tune_space.json
    ecgnet tune --study kachuee --n-trials 40 --epochs 30 &        # a second worker on the same study
    ecgnet tune --study lstm --set model=cnn_lstm --timeout 7200
    ecgnet train --config log/tune/kachuee/best_config.json        # train the best config found

The study is stored in <log_dir>/tune/<study>.db (SQLite): run the same command again to
continue a stopped study, or start it in several shells to share its trials. Outputs in
<log_dir>/tune/<study>/: best_config.json, trials.csv, history.png, importance.png and one
TensorBoard run per trial (tensorboard --logdir <log_dir>/tune/<study>).
"""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", required=True, help="study name (its storage: <log_dir>/tune/<study>.db)")
    p.add_argument("--config", help="base JSON config (default: config/config.json when it exists, else the built-in defaults)")
    p.add_argument("--space", default="config/tune_space.json", help="search space JSON (default: %(default)s)")
    p.add_argument("--n-trials", type=int, default=20, help="finished (completed or pruned) trials the study should hold (default 20)")
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument("--epochs", type=int, help="epochs per trial (override config key 'epochs')")
    p.add_argument("--data-dir", help="override config key 'data_dir'")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any base config key (repeatable)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..config import Config, config_from_dict, load_config, parse_override
    from ..errors import EcgnetError
    from ..runtime import configure_process
    try:
        from ..training.tune import load_space, tune
    except ModuleNotFoundError as e:
        if e.name != "optuna":
            raise
        raise EcgnetError("ecgnet tune needs Optuna: pip install 'ecgnet[tune]' (or pip install optuna)") from None

    if args.n_trials < 1:
        raise EcgnetError(f"--n-trials must be at least 1, got {args.n_trials}")
    overrides = {k: v for k, v in (("epochs", args.epochs), ("data_dir", args.data_dir)) if v is not None}
    overrides.update(parse_override(s) for s in args.set)
    default = Path("config") / "config.json"
    base = load_config(args.config) if args.config else load_config(default) if default.exists() else Config()
    cfg = config_from_dict(overrides, source="command line", base=base)
    space = load_space(args.space)
    configure_process(cfg.num_threads, cfg.device)
    study = tune(cfg, space, args.study, args.n_trials, args.timeout)
    counts = {s.name.lower(): sum(t.state == s for t in study.trials) for s in {t.state for t in study.trials}}
    print(f"study {args.study}: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    if any(t.value is not None for t in study.trials):
        print(f"best: trial {study.best_trial.number}, validation macro-F1 {study.best_value:.4f}, {study.best_trial.params}")
        print(f"train it: ecgnet train --config {Path(cfg.log_dir) / 'tune' / args.study / 'best_config.json'}")
    return 0
