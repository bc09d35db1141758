"""The web page (ecgnet app) in Streamlit's AppTest: same counts as the CLI, accuracy of a labelled beat file, errors."""
import json

import numpy as np
import pytest

pytest.importorskip("streamlit")
from helpers import FIXTURES, ROOT, SAMPLES, ecgnet  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from ecgnet.constants import DEFAULT_DETECTOR  # noqa: E402
from ecgnet.serving.shipping import BUNDLED_RECORD  # noqa: E402
from ecgnet.webapp import session  # noqa: E402

PAGE = ROOT / "ecgnet" / "webapp" / "app.py"
pytestmark = pytest.mark.slow


def page() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.run()
    assert not at.exception and not at.error
    return at


def uploader(at: AppTest, key: str):
    return next(w for w in at.get("file_uploader") if w.key == key)


def upload(at: AppTest, *paths) -> AppTest:
    widget = uploader(at, "input")
    for path in paths:
        widget.upload(path.name, path.read_bytes())
    return at.run()


def metrics(at: AppTest) -> dict:
    return {m.label: m.value for m in at.metric}


def test_example_record_gives_the_clis_counts(tmp_path):
    at = page()
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert ecgnet("predict", "--record", BUNDLED_RECORD, "--out", tmp_path) == 0
    cli = json.loads((tmp_path / "summary.json").read_text())
    shown = next(m.value for m in at.markdown if m.value.startswith("Beats per class"))
    assert shown == "Beats per class: " + ", ".join(f"**{k}** {v}" for k, v in cli["per_class"].items())
    assert metrics(at)["Beats"] == str(cli["classified"]) and metrics(at)["Model"] == cli["model"]
    irregular = next(m.value for m in at.markdown if m.value.startswith("In irregular rhythm"))
    assert irregular.endswith(f": {100 * cli['irregular_rhythm_share']:.1f}% of beats")


def test_downloads_equal_the_cli_files(tmp_path):
    settings = {"model": session.AUTO_MODEL, "checkpoint_files": (), "detector": DEFAULT_DETECTOR, "lead": None, "fs": None,
                "min_confidence": None}
    model = session.classifier(settings, for_recording=True)  # what the page labels with: as the CLI, ONNX Runtime here
    result = session.label(session.EXAMPLE, model, settings)
    assert ecgnet("predict", "--record", BUNDLED_RECORD, "--out", tmp_path) == 0
    assert session.beats_csv(result) == (tmp_path / "beats.csv").read_bytes()
    assert session.summary_json(result) == (tmp_path / "summary.json").read_bytes()
    v = session.next_beat(result["table"]["name"], "V", -1)
    assert result["table"]["name"][v] == "V" and session.next_beat(result["table"]["name"], "V", v) > v
    weights = session.beat_attribution(result, model, v)
    assert weights.shape == (187,) and np.abs(weights).max() > 0 and (weights[result["beats"][v] == 0] == 0).all()


def test_uploaded_wfdb_pair_and_edf_are_labelled():
    at = page()
    upload(at, FIXTURES / "mitdb" / "208.hea", FIXTURES / "mitdb" / "208.dat")
    assert not at.error and metrics(at)["Beats"] == "104"  # the default detector's beats of the excerpt (106 annotated)
    at = page()
    upload(at, FIXTURES / "edf" / "208.edf")
    assert not at.error and metrics(at)["Beats"] == "104"


def test_a_labelled_beat_file_shows_its_accuracy(capsys):
    at = page()
    at.radio[0].set_value("A beat file").run()
    upload(at, SAMPLES / "mitbih_beats.csv")
    assert not at.exception and not at.error
    assert metrics(at)["Accuracy against the file's labels"] == "80.00%"   # the CLI's 8/10 with the shipped mitbih
    assert ecgnet("predict", SAMPLES / "mitbih_beats.csv") == 0 and "8/10 correct" in capsys.readouterr().out


@pytest.mark.parametrize("kind, name, content, expect", [
    ("A recording", "only.dat", b"\x00" * 100, "no recording among only.dat"),
    ("A recording", "208.hea", None, "signal file 208.dat named in 208.hea is missing"),
    ("A recording", "sig.npy", None, "carries no sampling rate; pass --fs"),
    ("A beat file", "beats.csv", b"1,2,3\n", "beats.csv, row 1: 3 values, expected 187"),
    ("A beat file", "nan.csv", None, "nan.csv, row 1, column 1: value nan is not finite"),
])
def test_bad_uploads_show_the_clis_message(tmp_path, kind, name, content, expect):
    path = tmp_path / name
    if name == "208.hea":
        path.write_bytes((FIXTURES / "mitdb" / "208.hea").read_bytes())
    elif name == "sig.npy":
        np.save(path, np.zeros(5000))
    elif name == "nan.csv":
        path.write_text(",".join(["nan"] * 187) + "\n")
    else:
        path.write_bytes(content)
    at = page()
    at.radio[0].set_value(kind).run()
    upload(at, path)
    assert not at.exception and len(at.error) == 1 and expect in at.error[0].value, [e.value for e in at.error]
    assert "/tmp" not in at.error[0].value                      # the user's file name, not the server's temp folder


def test_a_recording_without_beats_shows_the_message(tmp_path):
    np.save(tmp_path / "flat.npy", np.full(20 * 360, 0.3))
    at = page()
    at.sidebar.number_input[0].set_value(360.0).run()
    upload(at, tmp_path / "flat.npy")
    assert len(at.error) == 1
    assert "signal is a flat line; no beats can be found" in at.error[0].value


def test_a_foreign_checkpoint_upload_is_refused(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"not a checkpoint at all")
    at = page()
    uploader(at, "ckpt").upload("model.pt", (tmp_path / "model.pt").read_bytes())
    at.run()
    assert any("truncated or corrupt" in e.value for e in at.error)


def test_a_record_model_shows_its_verdict_on_the_example():
    at = page()
    at.sidebar.selectbox[0].select("ptbxl-mi").run()
    at.button[0].click().run()
    assert not at.exception and not at.error
    shown = metrics(at)
    card = json.loads((ROOT / "ecgnet" / "weights" / "ptbxl-mi.json").read_text())["figures"]["bundled"]
    assert shown["Verdict"] == card["12 leads"]["record_class"] == "MI" and shown["Leads"] == "12 leads"
    assert shown["p_MI"] == f"{card['12 leads']['p_MI']:.3f}"
