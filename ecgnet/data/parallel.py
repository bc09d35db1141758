"""Reading many records at once: a pool of spawned worker processes, and a collection that reports bad records."""
from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.pool
import sys
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from ..errors import EcgnetError

log = logging.getLogger(__name__)


def _attempt(fn, base: Path) -> tuple[bool, object]:
    """``fn(base)``, or the reason it failed: a bad record is reported, not fatal."""
    try:
        return True, fn(base)
    except (EcgnetError, OSError, ValueError) as e:
        return False, str(e)


@contextmanager
def worker_pool(workers: int) -> Iterator[multiprocessing.pool.Pool | None]:
    """A pool of ``workers`` spawned processes (clean workers, no forked thread pools), or None for one."""
    if workers <= 1:
        yield None
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield pool


def collect(items: list[tuple[str, Path]], fn, pool: multiprocessing.pool.Pool | None = None) -> list[dict]:
    """Run ``fn`` over records (in ``pool`` if given) with a progress bar; bad records are reported and
    skipped. Results keep the order of ``items``, so the output does not depend on the pool."""
    attempt = partial(_attempt, fn)
    bases = [base for _, base in items]
    outcomes = pool.imap(attempt, bases) if pool is not None else map(attempt, bases)
    results, failed = [], []
    for (name, _), (ok, value) in zip(items, tqdm(outcomes, total=len(items), desc="records", file=sys.stderr)):
        if ok:
            results.append(value)
        else:
            failed.append(name)
            tqdm.write(f"skipped record {name}: {value}", file=sys.stderr)
    if failed:
        log.warning("%d record(s) skipped: %s", len(failed), ", ".join(failed))
    if not results:
        raise EcgnetError("no record could be read; check --src")
    return results
