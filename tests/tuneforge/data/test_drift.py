"""Drift reports through real Evidently: no drift on identical data, drift on shifted data, stable files."""

import json
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from tests.helpers.project import REPO_ROOT
from tuneforge.base.errors import StageError
from tuneforge.data.drift import DRIFT_COLUMNS, write_drift_report


def reference_frame(rows: int = 200) -> pd.DataFrame:
    texts = [f"my card {i} was declined at the shop, why?" if i % 2 else f"where is {i}" for i in range(rows)]
    return pd.DataFrame({"text": texts, "label": [f"class_{i % 4}" for i in range(rows)], "extra": 1})


def shifted_frame(rows: int = 150) -> pd.DataFrame:
    # Mostly one class, and texts several times longer with many more words.
    sentence = "the payment I made yesterday evening still shows as pending in the app {i} "
    return pd.DataFrame(
        {
            "text": [sentence.format(i=i) * 4 for i in range(rows)],
            "label": ["class_0" if i % 10 else "class_1" for i in range(rows)],
        }
    )


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    out = tmp_path_factory.mktemp("drift")
    reference = reference_frame()
    same = write_drift_report(reference, reference.copy(), out, "same", "Same <vs> same")
    shifted = write_drift_report(reference, shifted_frame(), out, "shifted", "Shifted vs reference")
    return out, same, shifted


def test_identical_frames_show_no_drift(reports):
    _, same, _ = reports
    assert same["drift_share"] == 0.0
    assert same["dataset_drift"] is False
    assert same["drifted_columns"] == []
    assert set(same["columns"]) == set(DRIFT_COLUMNS)
    for column in same["columns"].values():
        assert column["drifted"] is False
        assert column["method"] and column["threshold"] > 0
    assert same["rows"] == {"reference": 200, "current": 200}


def test_shifted_frame_drifts_on_label_and_length(reports):
    _, _, shifted = reports
    assert {"label", "text_length", "word_count"} <= set(shifted["drifted_columns"])
    assert shifted["dataset_drift"] is True
    assert shifted["drift_share"] >= 0.75
    assert shifted["rows"] == {"reference": 200, "current": 150}
    # Small samples: Evidently picks p-value tests, so drift means a tiny score.
    assert shifted["columns"]["label"]["method"] == "chi-square p_value"
    assert shifted["columns"]["label"]["score"] < shifted["columns"]["label"]["threshold"]


def test_files_exist_and_json_holds_summary_and_evidently(reports):
    out, same, shifted = reports
    for name, summary in (("same", same), ("shifted", shifted)):
        page = (out / f"{name}.html").read_text(encoding="utf-8")
        assert len(page) > 10_000 and "drawDashboard" in page
        stored = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        assert {key: stored[key] for key in summary} == summary
        assert stored["metrics"] and stored["tests"], "Evidently's own metrics and tests are kept"
    assert "<title>Same &lt;vs&gt; same</title>" in (out / "same.html").read_text(encoding="utf-8")


def test_large_samples_use_distance_methods_and_still_see_no_drift(tmp_path):
    reference = reference_frame(1200)
    summary = write_drift_report(reference, reference.sample(frac=1, random_state=0), tmp_path, "big", "Big")
    assert summary["drifted_columns"] == []
    assert summary["columns"]["label"]["method"] == "Jensen-Shannon distance"
    assert summary["columns"]["text_length"]["method"] == "Wasserstein distance (normed)"


def test_files_are_byte_identical_across_runs_and_hash_seeds(tmp_path):
    # Another process with another hash seed: Evidently orders labels through a set, and ids are random.
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from tests.tuneforge.data.test_drift import reference_frame, shifted_frame
        from tuneforge.data.drift import write_drift_report
        write_drift_report(reference_frame(), shifted_frame(), Path(sys.argv[1]), "r", "R")
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "other")], check=True, env=env, timeout=120)
    write_drift_report(reference_frame(), shifted_frame(), tmp_path / "here", "r", "R")
    for file in ("r.json", "r.html"):
        assert (tmp_path / "here" / file).read_bytes() == (tmp_path / "other" / file).read_bytes(), file


def test_bad_inputs(tmp_path):
    reference = reference_frame()
    with pytest.raises(StageError, match="current data has no rows"):
        write_drift_report(reference, reference.iloc[:0], tmp_path, "r", "R")
    with pytest.raises(StageError, match="reference data has no column label"):
        write_drift_report(reference[["text"]], reference, tmp_path, "r", "R")
    with pytest.raises(ValueError, match="drift report name"):
        write_drift_report(reference, reference, tmp_path, "../escape", "R")
    assert list(tmp_path.iterdir()) == []
