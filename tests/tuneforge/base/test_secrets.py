"""Passwords in the spec's URLs never reach a record: meta.json, the registry, error lines (issue #18, item 1).

These run without a database server: the tune stage, switched off, records tune.storage without opening it,
so a PostgreSQL URL with a password goes the whole way into meta.json and the registry. The whole pipeline
with the registry itself on a password-protected PostgreSQL is tests/e2e/test_no_secrets_recorded.py.
"""

import json
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from flows.finetune import StageFailed
from registry.config import RegistryConfig
from stages import tune
from tuneforge.base.errors import StageError
from tuneforge.base.outputs import RUN_ID_ENV, RUN_PARAMETERS_ENV, write_meta
from tuneforge.base.secrets import for_records, mask_text, mask_url
from tuneforge.base.spec import TuneConfig
from tuneforge.cli import app
from tuneforge.params import Params, parse_params
from tuneforge.pipeline.runner import stage_main

SECRET = "Pw-5ecret-in-the-url"
PG_URL = f"postgresql+psycopg://trainer:{SECRET}@db.example.invalid:5432/studies"
MASKED_PG_URL = "postgresql+psycopg://trainer:***@db.example.invalid:5432/studies"


def files_holding(root: Path, secret: str) -> list[str]:
    return sorted(
        str(path.relative_to(root)) for path in root.rglob("*")
        if path.is_file() and secret.encode() in path.read_bytes()
    )


@pytest.mark.parametrize("url, shown", [
    (PG_URL, MASKED_PG_URL),
    ("postgresql://u:p%40ss@h/db?options=-csearch_path%3Dx", "postgresql://u:***@h/db?options=-csearch_path%3Dx"),
    ("sftp://me:hunter2@files.example.invalid/store", "sftp://me:***@files.example.invalid/store"),
    ("sqlite:///.tuneforge/registry.db", "sqlite:///.tuneforge/registry.db"),
    ("postgresql+psycopg://tuneforge@127.0.0.1:5/registry", "postgresql+psycopg://tuneforge@127.0.0.1:5/registry"),
    (".tuneforge/artifacts", ".tuneforge/artifacts"),
])
def test_mask_url_hides_only_the_password(url, shown):
    assert mask_url(url) == shown


def test_mask_text_masks_every_url_inside_a_message():
    text = f"cannot reach {PG_URL}, nor 'mysql://root:{SECRET}@other/db' (override registry.url={PG_URL})"
    assert mask_text(text) == (
        f"cannot reach {MASKED_PG_URL}, nor 'mysql://root:***@other/db' (override registry.url={MASKED_PG_URL})"
    )


def test_the_config_for_records_masks_every_url_field_while_the_stages_keep_the_real_one():
    params = Params(
        registry=RegistryConfig(url=PG_URL, artifacts=f"sftp://me:{SECRET}@files.example.invalid/store"),
        tune=TuneConfig(storage=PG_URL),
    )
    recorded = json.dumps(for_records(params))
    assert SECRET not in recorded
    assert for_records(params)["registry"]["url"] == MASKED_PG_URL
    assert for_records(params)["tune"]["storage"] == MASKED_PG_URL
    assert for_records(params)["validate"] == params.validate_.model_dump()  # keys as params.yaml names them
    # What the stages connect with is untouched, and so is a plain dump (tests and overrides round-trip it).
    assert params.registry.url == params.tune.storage == PG_URL
    assert params.model_dump()["registry"]["url"] == PG_URL


def test_write_meta_masks_the_config_and_a_flow_runs_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv(RUN_ID_ENV, "run-1")
    monkeypatch.setenv(RUN_PARAMETERS_ENV, json.dumps({"overrides": [f"registry.url={PG_URL}"]}))
    write_meta(tmp_path, stage="register", config={"registry": RegistryConfig(url=PG_URL)}, inputs={},
               metrics={}, started=0.0, extra={"note": f"compared with {PG_URL}"})
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert SECRET not in (tmp_path / "meta.json").read_text()
    assert meta["config"]["registry"]["url"] == MASKED_PG_URL
    assert meta["run"]["parameters"]["overrides"] == [f"registry.url={MASKED_PG_URL}"]
    assert meta["note"] == f"compared with {MASKED_PG_URL}"


def test_the_tune_stage_records_its_storage_masked_in_meta_json_and_the_registry(in_tmp_dir, monkeypatch):
    # Before: models/tune/meta.json and the registry's metadata of tune.meta held the password as written.
    root = in_tmp_dir
    spec = {
        "tune": {"enabled": False, "storage": PG_URL},
        "registry": {"url": f"sqlite:///{root / 'registry.db'}", "artifacts": str(root / "blobs"),
                     "cache": str(root / "cache")},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(spec))
    assert tune.main(["--params", "params.yaml"]) == 0

    meta = json.loads((root / "models/tune/meta.json").read_text())
    assert meta["config"]["tune"]["storage"] == MASKED_PG_URL
    shown = CliRunner().invoke(app, ["registry", "show", "tune.meta", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["metadata"]["config"]["tune"]["storage"] == MASKED_PG_URL
    assert files_holding(root, SECRET) == ["params.yaml"]  # the spec itself; no output, row or blob


def test_config_errors_quote_a_url_with_its_password_masked():
    with pytest.raises(StageError) as caught:
        parse_params({"tune": {"storage": f"mysql://root:{SECRET}@db/x"}})
    assert caught.value.message.endswith("got 'mysql://root:***@db/x'")


def test_a_stage_error_line_is_printed_with_passwords_masked(in_tmp_dir, capsys):
    (in_tmp_dir / "params.yaml").write_text("registry: {enabled: false}\n")

    def failing(params):
        raise StageError(f"cannot open {PG_URL}", detail=f"tried {PG_URL} twice")

    assert stage_main("validate", failing, ["--params", "params.yaml"]) == 1
    err = capsys.readouterr().err
    assert err == f"validate: error: cannot open {MASKED_PG_URL}\ntried {MASKED_PG_URL} twice\n"


def test_the_flow_reports_a_failed_stage_with_passwords_masked():
    failed = StageFailed("evaluate", f"ERROR: failed to reproduce 'evaluate': {PG_URL}", refused_input=False)
    assert SECRET not in str(failed) and SECRET not in failed.error_line


def test_the_secrets_module_stays_light():
    # tuneforge.base.spec imports it; a disabled stage must not pay for SQLAlchemy until a URL is masked.
    import subprocess

    probe = "import sys, tuneforge.base.spec; print('sqlalchemy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
