"""Data loading: first parse of the train CSV (.csv.xz and plain .csv) vs the cached load.

    python bench/load_data.py
"""
from __future__ import annotations

import lzma
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import data_dir, save, table

from ecgnet.data.beatfiles import read_beats
from ecgnet.data.datasets import find_file


def timed(fn, repeat=1):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    source = find_file(data_dir(), "mitbih_train")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ECGNET_CACHE_DIR"] = str(Path(tmp) / "cache")
        plain = Path(tmp) / "mitbih_train.csv"
        if source.name.endswith(".xz"):
            with lzma.open(source) as f, open(plain, "wb") as out:
                shutil.copyfileobj(f, out)
        else:
            shutil.copy(source, plain)
        for path in (source, plain):
            first = timed(lambda p=path: read_beats(p, 5, use_cache=False))
            read_beats(path, 5)  # fill the cache
            cached = timed(lambda p=path: read_beats(p, 5), repeat=5)
            rows.append({"file": path.name, "size_MB": round(path.stat().st_size / 1e6, 1), "first_parse_s": round(first, 2),
                         "cached_s": round(cached, 3), "speedup": f"{first / cached:.0f}x"})
            print(rows[-1], flush=True)
    print("\nLoading the MIT-BIH train CSV (87,591 beats): parse + validate vs cached .npz\n")
    print(table(rows, ["file", "size_MB", "first_parse_s", "cached_s", "speedup"]))
    print(f"\nwrote {save('load_data', {'rows': rows})}")


if __name__ == "__main__":
    main()
