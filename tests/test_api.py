"""The public API, the README's Python example, packaging, and the layering of the library."""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ENV, ROOT, SAMPLES

import ecgnet

# The house, bottom to top: a unit (a flat module or a subpackage of ecgnet/) imports only from itself and the
# units before it. Facts first, then signals, beat data, models, config, training, serving, and the doors on top.
LAYERS = ["constants", "errors", "atomic", "checksums", "cards", "metrics", "runtime", "plots", "signals", "data", "models",
          "config", "training", "serving", "webapp", "cli", "__main__"]
PACKAGE = ROOT / "ecgnet"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent == PACKAGE)

def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_public_api_is_exported():
    assert set(ecgnet.__all__) <= set(dir(ecgnet))
    for name in ("ECGNet", "Config", "load_config", "train", "evaluate", "Predictor", "read_beats_file",
                 "read_recording", "prepare"):
        assert name in ecgnet.__all__


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "samples").symlink_to(SAMPLES)
    exec(compile(readme_example(), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert (tmp_path / "log" / "quickstart" / "best.pt").exists()
    assert re.search(r"\['[NSVFQ]'( '[NSVFQ]')+\]", out.replace("\n", " ")), out


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The ecgnet modules ``path`` imports anywhere in it (relative imports resolved), as dotted names."""
    package = _module_name(path).split(".")[:-1] if path.name != "__init__.py" else _module_name(path).split(".")
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module or ""
            for alias in node.names:  # 'from . import x' names modules, 'from .x import y' names what x defines
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {name for name in found if name.split(".")[0] == "ecgnet" and name != "ecgnet"}


def _unit(module: str) -> str:
    """The flat module or subpackage of ecgnet/ that holds ``module``."""
    return module.split(".")[1]


def test_the_house_has_few_flat_modules_beside_its_subpackages():
    flat = [p for p in PACKAGE.glob("*.py")]
    packages = [p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()]
    assert len(flat) <= 12 and len(packages) >= 4, (flat, packages)
    assert {_unit(_module_name(p)) for p in MODULES if p.name != "__init__.py"} <= set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_layer_above(path):
    if path == PACKAGE / "__init__.py":
        return  # the package facade re-exports every layer, each name imported on first use
    layer = LAYERS.index(_unit(_module_name(path)))
    for name in _imports(path):
        theirs = LAYERS.index(_unit(name))
        assert theirs <= layer, f"{path.relative_to(PACKAGE)} ({LAYERS[layer]}) imports {name} ({LAYERS[theirs]}, above it)"


def test_no_import_circle_between_modules():
    import graphlib
    graph = {_module_name(p): {n for n in _imports(p) if n != "ecgnet"} for p in MODULES if p != PACKAGE / "__init__.py"}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        pytest.fail(f"import circle: {' -> '.join(e.args[1])}")


def test_modules_and_functions_stay_small():
    for path in MODULES:
        lines = path.read_text().count("\n")
        assert lines <= 300, f"{path.relative_to(ROOT)} has {lines} lines"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= 60, f"{path.relative_to(ROOT)}:{node.lineno} {node.name} has {length} lines"


def test_importing_the_library_changes_no_process_state():
    code = ("import matplotlib, torch; before = (matplotlib.get_backend(), torch.get_num_threads(), "
            "torch.are_deterministic_algorithms_enabled()); import ecgnet, ecgnet.training.trainer, ecgnet.serving.inference, ecgnet.plots; "
            "assert (matplotlib.get_backend(), torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before")
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, timeout=120)


@pytest.mark.slow
def test_console_command_runs():
    exe = Path(sys.executable).with_name("ecgnet")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "ecgnet"]
    proc = subprocess.run([*command, "--help"], capture_output=True, text=True, env=ENV, timeout=120, cwd=os.getcwd())
    assert proc.returncode == 0 and all(c in proc.stdout for c in ("train", "test", "predict", "prepare"))



def test_the_installed_package_requires_what_requirements_txt_lists():
    from importlib.metadata import requires

    from packaging.requirements import Requirement
    listed = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")]
    declared = [r for r in requires("ecgnet") if "extra ==" not in r]
    as_set = lambda rs: {(Requirement(r).name, Requirement(r).specifier) for r in rs}  # noqa: E731
    assert as_set(declared) == as_set(listed) and len(listed) >= 14
