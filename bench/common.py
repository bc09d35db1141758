"""Helpers shared by the benchmarks: data location, machine description, result tables."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "heartbeat"


def data_dir() -> Path:
    """$ECGNET_BENCH_DATA, else ../shared/data/heartbeat, else data/."""
    for candidate in (os.environ.get("ECGNET_BENCH_DATA"), DEFAULT_DATA, ROOT / "data"):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    raise SystemExit("no benchmark data: set ECGNET_BENCH_DATA to the folder with the Kaggle CSVs")


def machine() -> dict:
    import torch
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": str(torch.__version__), "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def table(rows: list[dict], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(str(r.get(c, "")).ljust(w) for c, w in zip(columns, widths)) + " |" for r in rows]
    return "\n".join(lines)


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload | {"machine": machine()}, indent=2) + "\n")
    return path


def mean_sd(values: list[float], digits: int = 1) -> str:
    """'mean ± sd' of the defined values (+P is undefined for a run that never predicts the class: '(n runs)')."""
    v = np.asarray(values, dtype=float)
    v, missing = v[np.isfinite(v)], int((~np.isfinite(v)).sum())
    if not len(v):
        return "–"
    text = f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"
    return text + (f" ({len(v)} runs)" if missing else "")
