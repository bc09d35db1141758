"""Draw docs/layout.png: ecgnet's packages by layer, their modules, and the imports between them, read from the code.

    python tools/draw_layout.py            # rewrites docs/layout.png
"""
from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ecgnet"
FLOORS = [  # top to bottom; a unit imports only from units on its floor's right or on lower floors (tests/test_api.py)
    ("doors", ["cli", "webapp"]),
    ("serving", ["serving"]),
    ("training", ["training"]),
    ("config", ["config"]),
    ("models", ["models"]),
    ("beat data", ["data"]),
    ("signals", ["signals"]),
    ("facts", ["plots", "runtime", "metrics", "checksums", "atomic", "errors", "constants"]),
]


FACTS = FLOORS[-1][1]


def spread(k: int, n: int, width: float) -> float:
    """The offset from a box's centre of the k-th of n arrow ends along its edge of ``width``."""
    return 0.0 if n == 1 else (k / (n - 1) - 0.5) * width


def unit_of(path: Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def imports_of(path: Path) -> set[str]:
    """The units of ecgnet that ``path`` imports (relative imports resolved)."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            parts = base + (node.module.split(".") if node.module else [])
            names = [parts[1]] if len(parts) > 1 else [a.name for a in node.names] if parts == ["ecgnet"] else []
            found.update(n for n in names if n != "__version__")
    return found


def graph() -> tuple[dict[str, list[tuple[str, int]]], Counter]:
    """Modules (name, lines) per unit, and import counts (module-level pairs) between units."""
    rooms: dict[str, list[tuple[str, int]]] = {}
    arrows: Counter = Counter()
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = unit_of(path)
        if path == PACKAGE / "__init__.py" or unit == "__main__":
            continue
        if path.name != "__init__.py":
            rooms.setdefault(unit, []).append((path.stem, path.read_text().count("\n")))
        for other in imports_of(path):
            if other != unit:
                arrows[unit, other] += 1
    return rooms, arrows


def draw(out: Path) -> None:
    rooms, arrows = graph()
    fig = Figure(figsize=(13, 10.5))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 13)
    ax.set_ylim(0, 10.5)
    ax.axis("off")
    boxes, floor_h = {}, 1.15
    for f, (label, units) in enumerate(FLOORS):
        y = 10.5 - 0.55 - (f + 1) * floor_h
        ax.text(0.15, y + floor_h / 2 - 0.1, label, fontsize=10, color="#555", va="center")
        width = 11.2 / len(units)
        for k, unit in enumerate(units):
            x = 1.6 + k * width
            mods = sorted(rooms.get(unit, []), key=lambda m: -m[1])
            lines = sum(n for _, n in mods)
            is_pkg = (PACKAGE / unit).is_dir()
            ax.add_patch(FancyBboxPatch((x + 0.05, y), width - 0.2, floor_h - 0.35, boxstyle="round,pad=0.02",
                                        fc="#dbe8f6" if is_pkg else "#eef0f2", ec="#2f5d8a" if is_pkg else "#999", lw=1.4 if is_pkg else 0.8))
            title = f"{unit}/" if is_pkg else f"{unit}.py"
            ax.text(x + 0.15, y + floor_h - 0.5, title if unit in FACTS else f"{title}  {lines} lines", fontsize=9.5, weight="bold",
                    va="center")
            if is_pkg:
                text, line = [], ""
                for name, _ in mods:
                    piece = (", " if line else "") + name
                    if len(line + piece) > (150 if len(units) == 1 else 55):
                        text.append(line + ",")
                        line = name
                    else:
                        line += piece
                text.append(line)
                ax.text(x + 0.15, y + floor_h - 0.72, "\n".join(text), fontsize=7.5, va="top", color="#333")
            boxes[unit] = (x + width / 2 - 0.05, y, y + floor_h - 0.35, width - 0.6)
    drawn = sorted((a, n) for a, n in arrows.items() if a[0] in boxes and a[1] in boxes and a[1] not in FACTS)
    outs = {u: sorted({d for (s, d), _ in drawn if s == u}, key=lambda d: boxes[d][0]) for u in boxes}
    ins = {u: sorted({s for (s, d), _ in drawn if d == u}, key=lambda s: boxes[s][0]) for u in boxes}
    for (src, dst), n in drawn:  # each arrow leaves and enters at its own point, spread along the boxes' edges
        x0 = boxes[src][0] + spread(outs[src].index(dst), len(outs[src]), boxes[src][3])
        x1 = boxes[dst][0] + spread(ins[dst].index(src), len(ins[dst]), boxes[dst][3])
        ax.add_patch(FancyArrowPatch((x0, boxes[src][1]), (x1, boxes[dst][2]), arrowstyle="-|>", mutation_scale=9,
                                     lw=0.5 + 0.3 * min(n, 8), color="#4a6a8a", alpha=0.6))
    n_pairs = len([a for a in arrows if a[0] in boxes and a[1] in boxes])
    ax.text(0.15, 10.2, f"ecgnet: {sum(len(m) for m in rooms.values())} modules in {len(rooms)} units on {len(FLOORS)} floors; "
                        f"{n_pairs} unit-to-unit imports, every one pointing down or within a floor",
            fontsize=11, weight="bold")
    ax.text(0.15, 0.15, "blue: subpackages, grey: flat modules; an arrow is one unit importing another (thicker: more modules); "
                        "the facts floor, which every floor imports, gets no arrows; drawn from the code by tools/draw_layout.py", fontsize=8, color="#555")
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    draw(ROOT / "docs" / "layout.png")
    print(f"wrote {ROOT / 'docs' / 'layout.png'}")
