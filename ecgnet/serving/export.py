"""Exports of trained weights: ONNX for ONNX Runtime (deployment without PyTorch), and model files.

The ONNX graph takes ``beats`` (batch, 187) float32 [and, for rhythm models, ``rhythm``
(batch, 5): the inputs of ``ecgnet.signals.rhythm.rhythm_inputs``; for template models,
``template`` (batch, 187): each beat's record template, ``ecgnet.signals.template``] and returns calibrated
``probabilities`` (batch, n_classes): the temperature is divided in inside the graph.
Everything needed to use it (task, class names, beat recipe) is in its metadata under
the key ``ecgnet``. It is written with the current exporter (``torch.onnx.export(...,
dynamo=True)``, torch.export-based), with a dynamic batch dimension, from the 2-D layout
of ``ecgnet.models.fastpath`` (each Conv1d as a (1, k) Conv2d), which ONNX Runtime runs fastest.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

from ..atomic import write_bytes
from ..constants import BEAT_LENGTH, ONNX_KIND, ONNX_METADATA_KEY, SAMPLE_RATE
from ..errors import EcgnetError
from ..models.checkpoint import model_from_checkpoint, temperature_of
from ..models.fastpath import CPUForward, uses_cpu_fast_path
from ..models.model import BeatClassifier
from ..signals.rhythm import RHYTHM_INPUTS


class CalibratedProbabilities(nn.Module):
    """``softmax(model(beats) / T)`` with beats as (batch, 187): the graph an ONNX export holds."""

    def __init__(self, model: BeatClassifier | CPUForward, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.temperature = temperature

    def forward(self, beats: torch.Tensor, rhythm: torch.Tensor | None = None, template: torch.Tensor | None = None) -> torch.Tensor:
        x = beats.unsqueeze(1) if template is None else torch.stack([beats, template], 1)
        return (self.model(x, rhythm) / self.temperature).softmax(1)


def onnx_metadata(ckpt: dict, name: str, rhythm_dim: int, template: bool) -> dict:
    """What a runtime needs besides the graph: task, classes, how beats are cut, rhythm and template inputs."""
    return {"kind": ONNX_KIND, "name": name, "task": ckpt["task"], "class_names": list(ckpt["class_names"]),
            "model_name": ckpt.get("model_name", "kachuee"), "sample_rate": SAMPLE_RATE, "beat_length": BEAT_LENGTH,
            "recipe": ckpt.get("recipe", {"before_r_s": 0.0}), "temperature": temperature_of(ckpt),
            "rhythm_inputs": list(RHYTHM_INPUTS) if rhythm_dim else [], "template": template, "versions": ckpt.get("versions", {})}


def strip_provenance(proto) -> None:
    """Drop the exporter's notes on each node (Python stack traces naming this machine's files): the graph is the same."""
    for nodes in [proto.graph.node] + [f.node for f in proto.functions]:
        for node in nodes:
            del node.metadata_props[:]
            node.doc_string = ""


def export_onnx(ckpt: dict, path: str | Path, name: str = "") -> Path:
    """Write ``ckpt``'s model as an ONNX file with calibrated probabilities and ecgnet metadata."""
    path = Path(path)
    model = model_from_checkpoint(ckpt).eval()
    # The (1, k) 2-D layout of ecgnet.models.fastpath: the same arithmetic, but ONNX Runtime's CPU
    # kernels run 2-D convolutions about 3x faster than 1-D ones (bench/inference.py).
    wrapper = CalibratedProbabilities((CPUForward(model) if uses_cpu_fast_path(model) else model).eval(), temperature_of(ckpt)).eval()
    batch = torch.export.Dim("batch", min=1)
    inputs = {"beats": torch.zeros(2, BEAT_LENGTH)}  # by name: the graph's inputs are exactly these
    if model.rhythm_dim:
        inputs["rhythm"] = torch.zeros(2, model.rhythm_dim)
    if model.template:
        inputs["template"] = torch.zeros(2, BEAT_LENGTH)
    shapes = {name: {0: batch} for name in inputs}
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.WARNING)  # the exporter reports each stage at INFO
    try:
        program = torch.onnx.export(wrapper, (), kwargs=inputs, input_names=list(inputs), output_names=["probabilities"],
                                    dynamic_shapes=shapes, dynamo=True, verbose=False)
    finally:
        onnx_logger.setLevel(level)
    proto = program.model_proto
    strip_provenance(proto)
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA_KEY, json.dumps(onnx_metadata(ckpt, name or path.stem, model.rhythm_dim, model.template))
    try:
        write_bytes(path, proto.SerializeToString())
    except OSError as e:
        raise EcgnetError(f"cannot write {path} ({e.strerror or e}); choose a writable folder") from None
    return path
