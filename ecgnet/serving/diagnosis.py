"""Record-level verdicts: a recording -> MI or NORM with its probability, from a record model (``ecgnet.models.record``).

A recording with all 12 standard leads is judged on them; one without them but with lead II, on lead II alone,
each at the threshold chosen for that lead set on held-out records (the model's card). A recording without lead
II, shorter than one 10 s window, or with fewer than two beats is refused with one line.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..atomic import write_text
from ..constants import DEFAULT_DETECTOR, RHYTHM_LEAD, STANDARD_LEADS, WFDB_SUFFIXES
from ..errors import EcgnetError
from ..models.checkpoint import model_from_checkpoint
from ..models.record import record_probabilities
from ..signals.leads import MultiLead, lead_beats, lead_slot, read_leads

MAX_BEATS = 64            # beats per recording the verdict reads (spread over a long recording)
LEAD_SETS = {"12 leads": STANDARD_LEADS, "lead II": (RHYTHM_LEAD,)}


class RecordPredictor:
    """A trained record model ready to judge recordings (``judge``)."""

    record_level = True

    def __init__(self, checkpoint: dict, source: str = "checkpoint") -> None:
        self.model = model_from_checkpoint(checkpoint, source).eval()
        self.class_names: list[str] = list(checkpoint["class_names"])
        self.model_name: str = checkpoint["model_name"]
        self.thresholds: dict[str, float] = dict(checkpoint.get("calibration", {}).get("thresholds", {}))
        self.name = source
        self.positive = self.class_names[-1]

    def lead_set(self, recording: MultiLead) -> str:
        """'12 leads' when the recording has every standard lead, else 'lead II' when it has lead II; else refused."""
        slots = {lead_slot(n) for n in recording.names} - {None}
        if len(slots) == len(STANDARD_LEADS) and "12 leads" in self.thresholds:
            return "12 leads"
        if STANDARD_LEADS.index(RHYTHM_LEAD) in slots and "lead II" in self.thresholds:
            return "lead II"
        raise EcgnetError(f"{recording.name}: model {self.name} judges 12-lead recordings or lead {RHYTHM_LEAD} alone; this one has "
                          f"{', '.join(recording.names) or 'no leads'} (no lead {RHYTHM_LEAD})")

    def judge(self, recording: MultiLead, detector: str = DEFAULT_DETECTOR) -> dict:
        """The verdict on one recording: record_class, p_<positive class>, the threshold and leads it used, beats read."""
        leads = self.lead_set(recording)
        cut = lead_beats(recording, detector, LEAD_SETS[leads])
        pick = np.unique(np.linspace(0, len(cut.beats) - 1, min(len(cut.beats), MAX_BEATS)).round().astype(int))
        beats = torch.from_numpy(cut.beats[pick][None])
        present = torch.from_numpy(cut.present[None])
        p = float(record_probabilities(self.model, beats, torch.ones(1, len(pick), dtype=torch.bool), present)[0, -1])
        threshold = self.thresholds[leads]
        return {"record": recording.name, "model": self.name, "record_class": self.positive if p >= threshold else self.class_names[0],
                f"p_{self.positive}": p, "threshold": threshold, "leads": leads,
                "leads_read": [STANDARD_LEADS[i] for i in np.flatnonzero(cut.present)], "beats_read": int(len(pick)),
                "beats_detected": int(len(cut.samples)), "fs": recording.fs, "seconds": recording.signals.shape[1] / recording.fs,
                "detector": detector}


def read_record_leads(path: str | Path) -> MultiLead:
    """Every lead of a WFDB record (record models need the leads' names; single-lead files do not name theirs)."""
    path = Path(path)
    if path.suffix and path.suffix not in WFDB_SUFFIXES:
        raise EcgnetError(f"{path}: record-level models read WFDB records (NAME.hea + data), whose header names each lead")
    return read_leads(path)


def judge_to_folder(predictor: RecordPredictor, record: str | Path, out: Path, detector: str = DEFAULT_DETECTOR) -> dict:
    """Judge one recording file and write ``out/summary.json``; returns the summary."""
    summary = predictor.judge(read_record_leads(record), detector)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
