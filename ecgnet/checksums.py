"""SHA-256 of files, and the ``SHA256SUMS`` file that ``prepare`` writes beside its outputs.

``SHA256SUMS`` has the format of ``sha256sum`` (``<hex>  <name>`` per line, checkable with
``sha256sum -c``). A file listed there is verified when ecgnet parses it, so a beat CSV or
side file damaged after it was prepared is refused instead of trained on.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from .atomic import write_text
from .errors import EcgnetError

SUMS_FILE = "SHA256SUMS"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sums(folder: Path) -> dict[str, str]:
    """name -> hex digest from ``folder/SHA256SUMS`` (empty when there is none or it is unreadable)."""
    try:
        lines = (Path(folder) / SUMS_FILE).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    sums = {}
    for line in lines:
        digest, _, name = line.partition("  ")
        if len(digest) == 64 and name:
            sums[name.strip().lstrip("*")] = digest.lower()
    return sums


def write_sums(folder: Path, names: list[str]) -> None:
    """Record the SHA-256 of ``names`` in ``folder`` (merged with entries already listed)."""
    write_digests(folder, {name: sha256_file(Path(folder) / name) for name in names if (Path(folder) / name).is_file()})


def write_digests(folder: Path, digests: dict[str, str]) -> None:
    """Record known digests (name -> hex) in ``folder/SHA256SUMS``, merged with entries already listed."""
    sums = read_sums(folder) | digests
    write_text(Path(folder) / SUMS_FILE, "".join(f"{sums[n]}  {n}\n" for n in sorted(sums)))


def verify_listed(path: Path) -> None:
    """Refuse ``path`` if the ``SHA256SUMS`` beside it lists it with another digest."""
    expected = read_sums(path.parent).get(path.name)
    if expected is not None and sha256_file(path) != expected:
        raise EcgnetError(f"{path} is corrupt: its SHA-256 does not match {path.parent / SUMS_FILE} (changed or damaged "
                          "since it was written); prepare the data again, or copy the file again")
