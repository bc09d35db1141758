"""The public API, the README's Python example, packaging, and the layering of the library."""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ecgnet
from helpers import ENV, ROOT, SAMPLES

# Each module may import from its own layer and the ones below, never from above.
LAYERS = [
    {"errors", "constants", "atomic", "checksums"},
    {"config", "model", "fastpath", "runtime", "augment", "beatfiles", "data", "checkpoint", "metrics", "plots",
     "records", "preprocess", "rhythm", "template", "calibration", "pretrained", "onnx_backend", "labelling", "streaming", "distributed",
     "store", "store_batches", "sources", "optimization", "fusion", "baselines", "registry", "ensemble", "loss", "fibrillation",
     "linear", "pooling"},
    {"trainer", "evaluation", "reporting", "inference", "prepare", "export", "shipping", "batch", "explain", "tune", "crossval"},
    {"cli", "__main__"},
]


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


def _imports(path: Path) -> set[str]:
    """ecgnet modules imported by ``path`` (relative imports resolved to top-level module names)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and path.parent.name == "ecgnet":
                names = [node.module] if node.module else [a.name for a in node.names]
                found.update(n.split(".")[0] for n in names)
            elif node.level >= 1 or (node.module or "").startswith("ecgnet"):
                found.add("cli" if node.level == 1 else (node.module or "").split(".")[-1] or "cli")
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "ecgnet").glob("*.py")), ids=lambda p: p.name)
def test_no_module_imports_from_a_layer_above(path):
    if path.stem == "__init__":
        return  # the package facade re-exports every layer
    layer = next(i for i, names in enumerate(LAYERS) if path.stem in names)
    for name in _imports(path):
        if name == "__version__" or name == "cli":
            continue
        theirs = next(i for i, names in enumerate(LAYERS) if name in names)
        assert theirs <= layer, f"{path.name} (layer {layer}) imports {name} (layer {theirs})"


def test_cli_modules_only_reach_down():
    for path in (ROOT / "ecgnet" / "cli").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module is None or node.module.split(".")[0] in set().union(*LAYERS[:3]), (path, node.module)


def test_importing_the_library_changes_no_process_state():
    code = ("import matplotlib, torch; before = (matplotlib.get_backend(), torch.get_num_threads(), "
            "torch.are_deterministic_algorithms_enabled()); import ecgnet, ecgnet.trainer, ecgnet.inference, ecgnet.plots; "
            "assert (matplotlib.get_backend(), torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before")
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, timeout=120)


@pytest.mark.slow
def test_console_command_runs():
    exe = Path(sys.executable).with_name("ecgnet")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "ecgnet"]
    proc = subprocess.run([*command, "--help"], capture_output=True, text=True, env=ENV, timeout=120, cwd=os.getcwd())
    assert proc.returncode == 0 and all(c in proc.stdout for c in ("train", "test", "predict", "prepare"))
