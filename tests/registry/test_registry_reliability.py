"""The registry serves only verified bytes and parses only exact names: the resolve cache is re-hashed and
rebuilt, `verify` covers it, names and versions are matched to their true end in ASCII, a re-run stage is
not a new version, and recorded URIs stay right in a copied checkout."""

import fnmatch
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from registry import api, blobs, record_stage
from registry.cli import app
from registry.config import RegistryConfig
from registry.connection import opened
from registry.db import transaction
from registry.errors import RegistryError
from registry.names import parse_ref, parse_version, validate_name
from registry.store import add_artifact
from stages import split
from tests.helpers.project import REPO_ROOT
from tests.helpers.registry import stage_dir, write
from tuneforge.base.errors import ConfigError
from tuneforge.base.outputs import EXECUTION_RECORDS, Produced, sha256_file, sha256_path
from tuneforge.base.spec import SplitConfig
from tuneforge.params import parse_params
from tuneforge.training import checkpoints


def _version(config, tag: str = "a"):
    """intent:N with an onnx folder (meta.json recording its files, as the export writes it) and a test split."""
    onnx = stage_dir(Path(f"{tag}/onnx"), "export", {"model.int8.onnx": f"weights {tag}", "labels.json": "[]"}, {},
                     {"parity_passed": True})
    splits = stage_dir(Path(f"{tag}/splits"), "split", {"test.parquet": "test rows"}, {}, {})
    onnx_ref, split_ref = record_stage(Produced(f"export{tag}", {"onnx": onnx, "splits": splits}, {}), config=config)
    return api.register_model("intent", {"onnx_int8": onnx_ref, "test_split": split_ref}, config=config)


def cli(*args: str, code: int = 0):
    result = CliRunner().invoke(app, ["--params", "params.yaml", *args])
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def params_file(registry_config) -> Path:
    return write(Path("params.yaml"), yaml.safe_dump({"registry": registry_config.model_dump()}))


# 1. The resolve cache is verified on every resolve, and by `verify`.

def test_a_tampered_cached_file_is_rebuilt_from_the_verified_store(registry_config, params_file):
    version = _version(registry_config)
    folder = api.resolve(f"intent:{version.version}", config=registry_config)
    model = folder / "onnx_int8" / "model.int8.onnx"
    assert model.read_text() == "weights a"

    model.write_text("weights b")  # same size: a size-and-mtime check would not see it
    report = api.verify(f"intent:{version.version}", config=registry_config)
    assert report["cached"] == 1
    assert [(p["expected"], p["actual"]) for p in report["problems"]] == [
        (sha256_file(Path("a/onnx/model.int8.onnx")), sha256_file(model))
    ]
    failed = cli("verify", code=1)
    assert failed.stderr.startswith("error: 1 problem(s) found") and "model.int8.onnx" in failed.stdout

    again = api.resolve(f"intent:{version.version}", config=registry_config)
    assert again == folder and model.read_text() == "weights a"
    assert api.verify(config=registry_config)["problems"] == []
    assert "1 cached copies" in cli("verify", f"intent:{version.version}").stdout


def test_missing_extra_and_linked_files_in_the_cache_are_rebuilt(registry_config):
    version = _version(registry_config)
    folder = api.resolve(f"intent:{version.version}", config=registry_config)
    (folder / "onnx_int8" / "labels.json").unlink()
    write(folder / "onnx_int8" / "model.onnx", "an extra graph a loader might pick")
    (folder / "test_split" / "test.parquet").unlink()
    (folder / "test_split" / "test.parquet").symlink_to(Path("a/splits/test.parquet").resolve())
    problems = api.verify(f"intent:{version.version}", config=registry_config)["problems"]
    assert sorted(p["actual"] for p in problems) == ["a file no artifact records", "a link", "missing", "missing"]

    assert api.resolve(f"intent:{version.version}", config=registry_config) == folder
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == ["onnx_int8/labels.json", "onnx_int8/meta.json", "onnx_int8/model.int8.onnx",
                     "test_split/meta.json", "test_split/test.parquet"]
    assert not (folder / "test_split" / "test.parquet").is_symlink()
    assert api.verify(config=registry_config)["problems"] == []


def test_a_tampered_cache_over_a_tampered_blob_is_refused_in_one_line(registry_config):
    version = _version(registry_config)
    folder = api.resolve(f"intent:{version.version}", config=registry_config)
    model = folder / "onnx_int8" / "model.int8.onnx"
    model.write_text("weights b")
    store = blobs.open_store(registry_config.artifacts)
    Path(blobs.blob_path(store, sha256_file(Path("a/onnx/model.int8.onnx")))).write_text("weights b")
    with pytest.raises(RegistryError, match=r"model.int8.onnx: stored blob does not match its hash .*tampered"):
        api.resolve(f"intent:{version.version}", config=registry_config)
    assert not folder.exists()  # the bad copy is not left to be served by the next caller
    with pytest.raises(RegistryError, match="tampered"):
        api.download(f"intent:{version.version}", Path("out"), config=registry_config)
    assert not Path("out").exists()


# 3, 4. Names end where they end; versions are ASCII digits.

@pytest.mark.parametrize("name", ["production\n", "production\r", "prod\x00", "prod\u200b", "ｐrod", "a" * 65])
def test_names_with_a_trailing_newline_control_or_lookalike_characters_are_refused(name):
    with pytest.raises(RegistryError, match="invalid alias"):
        validate_name(name, "alias")
    with pytest.raises(RegistryError, match="invalid"):
        parse_ref(f"intent@{name}")


@pytest.mark.parametrize("version", ["²", "٣", "３", "1\n", "0", "-1", "1.0", "", " 1", "9" * 19])
def test_versions_must_be_positive_ascii_integers(version):
    with pytest.raises(RegistryError, match="positive integer"):
        parse_ref(f"intent:{version}")
    with pytest.raises(RegistryError, match="positive integer"):
        parse_version(version)


def test_cli_refuses_unicode_digits_and_trailing_newlines_in_one_line(registry_config, params_file):
    version = _version(registry_config)
    assert cli("show", "intent:²", code=1).stderr == (
        "error: invalid reference 'intent:²': version must be a positive integer (ASCII digits)\n"
    )
    assert "'٣'" in cli("promote", "intent", "٣", "--to", "staging", code=1).stderr
    assert "invalid alias 'staging\\n'" in cli("promote", "intent", "1", "--to", "staging\n", code=1).stderr
    assert "invalid tag 'good\\n'" in cli("tag", f"intent:{version.version}", "good\n", code=1).stderr
    assert api.show(f"intent:{version.version}", config=registry_config)["tags"] == []
    assert [e["kind"] for e in api.events("intent", config=registry_config)] == ["registered"]


def test_config_names_and_checkpoint_folders_are_matched_to_their_true_end(tmp_path):
    with pytest.raises(ConfigError, match="registry.model_name"):
        parse_params({"registry": {"model_name": "intent\n"}})
    for name in ("checkpoint-2", "checkpoint-10", "checkpoint-٣", "checkpoint-4\n", "checkpoint-²"):
        (tmp_path / name).mkdir()
    assert [p.name for p in checkpoints.checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-10"]


# 5. Execution records (meta.json) are not part of an artifact's identity.

def test_execution_records_are_what_dvcignore_leaves_out_of_output_hashes():
    patterns = [line.strip() for line in (REPO_ROOT / ".dvcignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    outputs = [p for p in patterns if p.split("/")[0] in ("data", "models", "reports")]
    assert outputs and {p.rsplit("/", 1)[-1] for p in outputs} == EXECUTION_RECORDS
    for record in EXECUTION_RECORDS:  # and each is ignored only at the top of an output folder
        assert all(fnmatch.fnmatch(f"{p.rsplit('/', 1)[0]}/{record}", p) for p in outputs if p.endswith(record))


def test_running_a_stage_twice_on_unchanged_input_is_the_same_artifact_version(registry_config):
    rows = [{"text": f"{label} question number {i}", "label": label, "source_row": n}
            for n, (label, i) in enumerate((label, i) for label in ("card", "refund", "fees") for i in range(20))]
    Path("data/validated").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet("data/validated/train.parquet", index=False)

    first = record_stage(split.run(SplitConfig(seed=3)), config=registry_config)
    meta = json.loads(Path("data/splits/meta.json").read_text())
    second = record_stage(split.run(SplitConfig(seed=3)), config=registry_config)
    assert json.loads(Path("data/splits/meta.json").read_text()) != meta  # wall time and CPU time differ
    assert [(r.name, r.version, r.sha256) for r in second] == [(r.name, r.version, r.sha256) for r in first]
    assert {r.version for r in first} == {1}
    assert first[0].sha256 == sha256_path(Path("data/splits"))

    third = record_stage(split.run(SplitConfig(seed=4)), config=registry_config)  # other content: new versions
    assert third[0].version == 2


def test_a_stage_output_that_is_its_meta_json_follows_the_stage_results(registry_config):
    def run(content: str, wall: float):
        write(Path("out/train.parquet"), content)
        write(Path("out/meta.json"), json.dumps({"metrics": {}, "wall_time_s": wall}))
        return record_stage(Produced("aug", {"train": Path("out/train.parquet"), "meta": Path("out/meta.json")}, {}),
                            config=registry_config)

    assert [r.version for r in run("rows", 1.0)] == [1, 1]
    assert [r.version for r in run("rows", 2.0)] == [1, 1]  # only the record of the execution changed
    assert [r.version for r in run("other rows", 3.0)] == [2, 2]


def test_rows_hashed_before_execution_records_were_left_out_still_verify_and_resolve(registry_config):
    folder = stage_dir(Path("old/splits"), "split", {"test.parquet": "rows"}, {}, {})
    store = blobs.open_store(registry_config.artifacts)
    files = blobs.put_directory(store, folder)[1]
    legacy_sha = blobs.listing_sha256(files, with_records=True)
    absolute_uri = f"file://{Path('/elsewhere/clone/.tuneforge/artifacts/manifests').as_posix()}/{legacy_sha}.json"
    with opened(registry_config) as registry, transaction(registry.engine) as session:
        add_artifact(session, name="split.splits", kind="dataset", sha256=legacy_sha, size=4, is_dir=True,
                     uri=absolute_uri, path="data/splits", stage="split", run_id=None, meta={}, files=files, inputs=[])
    assert api.show("split.splits", config=registry_config)["uri"] == absolute_uri
    assert api.verify(config=registry_config)["problems"] == []
    resolved = api.resolve("split.splits:1", config=registry_config)
    assert (resolved / "test.parquet").read_text() == "rows"


# 6. URIs recorded relative to the checkout.

def test_a_copied_checkout_shows_uris_into_its_own_store(tmp_path, monkeypatch):
    clone = tmp_path / "clone"
    clone.mkdir()
    monkeypatch.chdir(clone)
    monkeypatch.delenv("TUNEFORGE_RUN_ID", raising=False)
    config = RegistryConfig()  # the defaults: database, store and cache under .tuneforge/
    write(Path("models/onnx/model.int8.onnx"), "weights")
    write(Path("reports/metrics/export.json"), "{}")
    folder_ref, file_ref = record_stage(
        Produced("export", {"onnx": Path("models/onnx"), "metrics": Path("reports/metrics/export.json")}, {}),
        config=config,
    )
    assert folder_ref.uri == f".tuneforge/artifacts/manifests/{folder_ref.sha256}.json"
    assert file_ref.uri == f".tuneforge/artifacts/sha256/{file_ref.sha256[:2]}/{file_ref.sha256[2:]}"

    copy = shutil.copytree(clone, tmp_path / "copy", symlinks=True)
    shutil.rmtree(clone)
    monkeypatch.chdir(copy)
    shown = api.show("export.metrics", config=config)
    assert (copy / shown["uri"]).is_file() and sha256_file(copy / shown["uri"]) == file_ref.sha256
    assert (copy / api.show("export.onnx", config=config)["uri"]).is_file()
    assert api.resolve("export.onnx", config=config).is_relative_to(copy)
