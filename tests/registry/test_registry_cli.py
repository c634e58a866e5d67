"""`tuneforge registry ...` through typer's CliRunner, plus one real subprocess: tables, --json, gate table,
one-line errors with a non-zero exit and no traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from registry import api, blobs, record_stage
from registry.cli import app
from tests.helpers.registry import run_data_stages, stage_dir, write
from tuneforge.base.outputs import Produced, sha256_file

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMOTION = {
    "min_metrics": {"metrics.f1_macro": 0.7},
    "primary_metric": "metrics.f1_macro",
    "min_improvement": 0.01,
    "parity_flag": "onnx_int8.parity_passed",
    "validation_flag": None,
    "drift_metric": None,
}


@pytest.fixture
def params_file(registry_config) -> Path:
    return write(Path("params.yaml"), yaml.safe_dump({
        "registry": registry_config.model_dump(), "promotion": PROMOTION,
    }))


def cli(*args: str, code: int = 0):
    result = CliRunner().invoke(app, ["--params", "params.yaml", *args])
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    return result


def _candidate(config, version_tag: str, f1: float, parity: bool = True):
    write(Path(f"{version_tag}/model.onnx"), f"onnx {version_tag}")
    splits = stage_dir(Path(f"{version_tag}/splits"), "split", {"test.parquet": "same test"}, {}, {})
    onnx, split = record_stage(
        Produced(f"export{version_tag}", {"onnx": Path(f"{version_tag}/model.onnx"), "splits": splits}, {}),
        config=config,
    )
    return api.register_model(
        "intent", {"onnx_int8": onnx, "test_split": split},
        metrics={"metrics.f1_macro": f1, "onnx_int8.parity_passed": parity}, config=config,
    )


def test_inspection_commands_with_json(registry_config, params_file):
    run = run_data_stages(Path.cwd())
    for produced in run.values():
        record_stage(produced, config=registry_config)
    _candidate(registry_config, "a", 0.8)

    models = json.loads(cli("models", "--json").stdout)
    assert models[0]["name"] == "intent" and models[0]["latest_version"] == 1
    versions = json.loads(cli("versions", "intent", "--json").stdout)
    assert versions[0]["artifacts"]["onnx_int8"]["name"] == "exporta.onnx"
    artifact_versions = json.loads(cli("versions", "split.splits", "--json").stdout)
    assert [v["version"] for v in artifact_versions] == [1]
    shown = json.loads(cli("show", "validate.validated:1", "--json").stdout)
    assert shown["type"] == "artifact" and shown["metadata"]["metrics"]["success"] is True
    tree = json.loads(cli("lineage", "augment.augmented", "--json").stdout)
    assert tree["inputs"][0]["inputs"][0]["inputs"][0]["sha256"] == sha256_file(Path("examples/intents.csv"))
    names = {a["name"] for a in json.loads(cli("artifacts", "--json").stdout)}
    assert {"intents.csv", "validate.validated", "split.splits", "augment.augmented"} <= names
    kinds = [e["kind"] for e in json.loads(cli("events", "intent", "--json").stdout)]
    assert kinds == ["registered"]

    text = cli("lineage", "augment.augmented").stdout
    assert f"intents.csv:1 (source) sha256:{sha256_file(Path('examples/intents.csv'))}" in text
    assert "└── train (train.parquet): split.splits:1 (dataset)" in text
    assert "validate.validated:1" in cli("show", "validate.validated").stdout


def test_promote_prints_the_gate_table_and_refuses_failing_gates(registry_config, params_file):
    _candidate(registry_config, "a", 0.8)
    _candidate(registry_config, "b", 0.805)
    _candidate(registry_config, "c", 0.6, parity=False)

    passed = cli("promote", "intent", "1", "--to", "production")
    assert "promoted intent:1 to production" in passed.stdout and "pass" in passed.stdout

    failed = cli("promote", "intent", "2", "--to", "production", code=1)
    assert "FAIL" in failed.stdout and "beats production holder" in failed.stdout
    assert failed.stderr == (
        "error: promotion of intent:2 to production refused: 1 gate(s) failed: "
        "beats production holder on metrics.f1_macro\n"
    )
    as_json = json.loads(cli("promote", "intent", "3", "--to", "production", "--json", code=1).stdout)
    assert [g["passed"] for g in as_json["gates"]] == [False, False, True, False]

    refused = cli("promote", "intent", "3", "--to", "production", "--force", code=1)
    assert refused.stderr == 'error: a forced promotion needs a reason (--reason "...")\n'
    forced = cli("promote", "intent", "3", "--to", "production", "--force", "--reason", "customer demo")
    assert "forced intent:3 to production (was intent:1): customer demo" in forced.stdout
    assert cli("rollback", "intent", "--alias", "production").stdout.strip() == (
        "rolled back intent@production: intent:3 -> intent:1"
    )
    kinds = [e["kind"] for e in json.loads(cli("events", "intent", "--json").stdout)]
    assert kinds[3:] == ["gate_decided", "promoted", "gate_decided", "gate_decided", "gate_decided", "forced",
                         "rolled_back"]
    assert json.loads(cli("show", "intent@production", "--json").stdout)["version"] == 1


def test_download_verify_and_gc(registry_config, params_file, tmp_path):
    version = _candidate(registry_config, "a", 0.8)
    out = cli("download", "intent:1", str(tmp_path / "out"))
    assert (tmp_path / "out" / "onnx_int8" / "model.onnx").read_text() == "onnx a"
    assert "downloaded intent:1" in out.stdout
    assert json.loads(cli("verify", "--json").stdout)["problems"] == []
    assert "ok: 3 blob(s) of 2 artifact(s) verified" in cli("verify").stdout
    assert json.loads(cli("gc", "--grace-s", "0", "--json").stdout)["removed_blobs"] == 0

    onnx = version.artifacts["onnx_int8"]
    Path(blobs.blob_path(blobs.open_store(registry_config.artifacts), onnx.sha256)).write_bytes(b"evil")
    bad = cli("verify", "intent:1", code=1)
    assert onnx.sha256 in bad.stdout and bad.stderr == (
        "error: 1 problem(s) found (3 blob(s) and 0 cached copies checked)\n"
    )
    refused = cli("download", "exporta.onnx", str(tmp_path / "again.onnx"), code=1)
    assert refused.stderr.startswith(f"error: exporta.onnx:1: stored blob does not match its hash (expected sha256 "
                                     f"{onnx.sha256}, got ")
    assert not (tmp_path / "again.onnx").exists()


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["show", "nope"], "error: unknown model or artifact 'nope'", 1),
        (["versions", "../etc"], "error: invalid name '../etc'", 1),
        (["show", "intent@prod/x"], "error: invalid alias 'prod/x'", 1),
        (["promote", "intent", "1", "--to", "a/b"], "error: invalid alias 'a/b'", 1),
        (["rollback", "nope", "--alias", "production"], "error: unknown model 'nope'", 1),
        (["register", "intent", "broken"], "error: expected ROLE=ARTIFACT, got 'broken'", 1),
    ],
)
def test_errors_are_one_line_with_a_nonzero_exit(registry_config, params_file, args, message, code):
    result = cli(*args, code=code)
    assert result.stderr.splitlines()[0].startswith(message)
    assert len(result.stderr.splitlines()) == 1


def test_register_and_tag_from_the_command_line(registry_config, params_file):
    write(Path("m/model.onnx"), "onnx")
    record_stage(Produced("export", {"onnx": Path("m/model.onnx")}, {}), config=registry_config)
    registered = json.loads(cli("register", "intent", "onnx_int8=export.onnx:1", "--metric", "metrics.f1_macro=0.9",
                                "--tag", "candidate", "--json").stdout)
    assert registered["version"] == 1 and registered["metrics"]["metrics.f1_macro"] == 0.9
    assert registered["tags"] == ["candidate"]
    assert "intent:1: tags candidate, reviewed" in cli("tag", "intent:1", "reviewed").stdout


def test_bad_params_file_is_a_config_error(registry_config, params_file):
    write(Path("params.yaml"), "registry:\n  url: 3\n")
    result = cli("models", code=2)
    assert result.stderr.startswith("error: params.yaml: registry.url: must be a valid string")


def test_subprocess_not_a_registry_is_one_line_and_registry_untouched(tmp_path):
    write(tmp_path / "junk.db", b"\x00\x01not sqlite at all" * 100)
    before = sha256_file(tmp_path / "junk.db")
    write(tmp_path / "params.yaml", yaml.safe_dump({"registry": {
        "url": f"sqlite:///{tmp_path / 'junk.db'}", "artifacts": str(tmp_path / "store"),
    }}))
    result = subprocess.run(
        [sys.executable, "-m", "registry.cli", "--params", str(tmp_path / "params.yaml"), "models"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr == f"error: registry database {tmp_path / 'junk.db'} is not a tuneforge registry " \
                            "(not a SQLite database)\n"
    assert result.stdout == ""
    assert sha256_file(tmp_path / "junk.db") == before


def test_subprocess_lineage_of_the_data_stages(registry_config, params_file):
    for produced in run_data_stages(Path.cwd()).values():
        record_stage(produced, config=registry_config)
    result = subprocess.run(
        [sys.executable, "-m", "registry.cli", "--params", "params.yaml", "lineage", "augment.augmented"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("augment.augmented:1 (dataset) sha256:")
    assert lines[-1].endswith(f"intents.csv:1 (source) sha256:{sha256_file(Path('examples/intents.csv'))} "
                              "examples/intents.csv")
