"""End to end: `dvc repro` in a real git repo holding the project's files, on the example data.

First run: every data stage runs. Second run: nothing runs. Changed split.seed: split and augment
rerun, validate does not. DVC decides all of this from dvc.yaml; the test only reads what it did.
"""

import re

import pytest

from conftest import dvc

pytestmark = pytest.mark.e2e
DATA_STAGES = ["validate", "split", "augment"]


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def test_dvc_repro_runs_skips_and_reruns_only_what_changed(project_clone):
    first = dvc(project_clone, "repro", *DATA_STAGES)
    assert stages_run(first) == DATA_STAGES
    for path in ("data/validated/train.parquet", "data/splits/val.parquet", "data/augmented/train.parquet",
                 "reports/split/val_vs_train.html", "reports/augment/augmented_vs_original.json"):
        assert (project_clone / path).is_file(), path
    assert "Data and pipelines are up to date" in dvc(project_clone, "status", *DATA_STAGES)

    second = dvc(project_clone, "repro", *DATA_STAGES)
    assert stages_run(second) == []

    validated_before = (project_clone / "data/validated/train.parquet").read_bytes()
    val_before = (project_clone / "data/splits/val.parquet").read_bytes()
    params = project_clone / "params.yaml"
    params.write_text(params.read_text().replace("seed: 42", "seed: 7"))
    third = dvc(project_clone, "repro", *DATA_STAGES)
    assert stages_run(third) == ["split", "augment"]
    assert (project_clone / "data/validated/train.parquet").read_bytes() == validated_before
    assert (project_clone / "data/splits/val.parquet").read_bytes() != val_before, "a new seed, a new split"
