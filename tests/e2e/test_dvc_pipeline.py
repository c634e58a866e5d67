"""End to end: `dvc repro` in a real git repo holding the project's files, on the example data.

Every stage registers its outputs as it runs, so the registry's lineage of the last artifact walks
back to the validated dataset and the raw file's hash.

First run: every data stage runs. Second run: nothing runs. Changed split.seed: split and the data
stages after it rerun, validate does not. DVC decides all of this from dvc.yaml; the test only reads what
it did. The data stages are read from dvc.yaml too: the stages whose outputs live under data/.
"""

import hashlib
import json
import re
import subprocess
import sys

import pytest
import yaml

from tests.helpers.project import dvc

pytestmark = pytest.mark.e2e


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def data_stages(repo) -> list[str]:
    """dvc.yaml's stages that write under data/, in the order it declares them (their dependency order)."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    paths = {name: [next(iter(out)) if isinstance(out, dict) else out for out in stage.get("outs", [])]
             for name, stage in stages.items()}
    return [name for name, outs in paths.items() if any(out.startswith("data/") for out in outs)]


def test_dvc_repro_runs_skips_and_reruns_only_what_changed(project_clone):
    stages = data_stages(project_clone)
    assert stages[:2] == ["validate", "split"]
    first = dvc(project_clone, "repro", *stages)
    assert stages_run(first) == stages
    for path in ("data/validated/train.parquet", "data/splits/val.parquet", "data/augmented/train.parquet",
                 "reports/split/val_vs_train.html", "reports/augment/augmented_vs_original.json"):
        assert (project_clone / path).is_file(), path
    assert "Data and pipelines are up to date" in dvc(project_clone, "status", *stages)
    assert_lineage_reaches_the_raw_file(project_clone)

    second = dvc(project_clone, "repro", *stages)
    assert stages_run(second) == []

    validated_before = (project_clone / "data/validated/train.parquet").read_bytes()
    val_before = (project_clone / "data/splits/val.parquet").read_bytes()
    params = project_clone / "params.yaml"
    params.write_text(params.read_text().replace("seed: 42", "seed: 7"))
    third = dvc(project_clone, "repro", *stages)
    assert stages_run(third) == stages[stages.index("split"):]
    assert (project_clone / "data/validated/train.parquet").read_bytes() == validated_before
    assert (project_clone / "data/splits/val.parquet").read_bytes() != val_before, "a new seed, a new split"


def assert_lineage_reaches_the_raw_file(clone):
    shown = subprocess.run(
        [sys.executable, "-m", "tuneforge.cli", "registry", "lineage", "augment.train", "--json"],
        cwd=clone, capture_output=True, text=True, check=True,
    )
    nodes, stack = [], [json.loads(shown.stdout)]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node["inputs"])
    refs = {node["ref"].split(":")[0]: node for node in nodes}
    assert {"augment.train", "split.splits", "validate.validated"} <= set(refs)
    raw = hashlib.sha256((clone / "examples" / "intents.csv").read_bytes()).hexdigest()
    assert refs["intents.csv"]["kind"] == "source" and refs["intents.csv"]["sha256"] == raw
