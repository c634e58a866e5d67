"""Registry behaviour on SQLite and (when TUNEFORGE_TEST_PG_URL is set) PostgreSQL: registration, lineage,
content-addressed blobs, model versions, aliases, promotion gates, rollback, integrity, names."""

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from registry import api, blobs, record_stage
from registry.config import PromotionConfig
from registry.db import open_database, transaction
from registry.errors import RegistryError
from registry.lineage import sources
from registry.names import parse_ref, safe_name, validate_name
from registry.schema import Artifact, Event, Run
from tests.helpers.registry import run_data_stages, stage_dir, write
from tuneforge.base.outputs import Produced, sha256_file, sha256_path

POLICY = PromotionConfig(
    min_metrics={"metrics.f1_macro": 0.7},
    primary_metric="metrics.f1_macro",
    min_improvement=0.01,
    test_split_role="test_split",
    parity_flag="onnx_int8.parity_passed",
    validation_flag="validated.success",
    drift_metric="test_split.drift_share.test_vs_train",
    max_drift_share=0.3,
)


def _record_all(config, produced):
    return {stage: record_stage(p, config=config) for stage, p in produced.items()}


def _rows(config, model, column=None):
    engine = open_database(config.url)
    try:
        with transaction(engine) as session:
            return session.scalar(select(func.count()).select_from(model))
    finally:
        engine.dispose()


def test_record_stage_registers_outputs_with_kinds_hashes_and_meta(registry_config):
    produced = run_data_stages(Path.cwd())
    refs = record_stage(produced["validate"], config=registry_config)

    assert [(r.name, r.version, r.kind) for r in refs] == [
        ("validate.validated", 1, "dataset"), ("validate.reports", 1, "report"), ("validate.metrics", 1, "metrics"),
    ]
    assert refs[0].sha256 == sha256_path(Path("data/validated"))  # directory hash agrees with tuneforge.base.outputs
    assert refs[2].sha256 == sha256_file(Path("reports/metrics/validate.json"))
    shown = api.show("validate.validated", config=registry_config)
    assert shown["metadata"] == json.loads(Path("data/validated/meta.json").read_text())
    assert {f["path"] for f in shown["files"]} == {"train.parquet", "labels.json", "meta.json"}
    assert shown["run"]["entry_point"] == "cli" and shown["run"]["status"] == "succeeded"
    # The raw input is registered as a source, named after its file, with its own hash.
    raw = api.show("intents.csv", config=registry_config)
    assert raw["kind"] == "source" and raw["sha256"] == sha256_file(Path("examples/intents.csv"))


def test_lineage_walks_back_from_augmented_data_to_the_raw_file_hash(registry_config):
    produced = run_data_stages(Path.cwd())
    _record_all(registry_config, produced)

    tree = api.lineage("augment.augmented", config=registry_config)
    assert tree["ref"] == "augment.augmented:1"
    (split_node,) = tree["inputs"]
    # augment read one file of the split folder: the edge names the artifact and the file inside it.
    assert split_node["ref"] == "split.splits:1" and split_node["role"] == "train (train.parquet)"
    (validated_node,) = split_node["inputs"]
    assert validated_node["ref"] == "validate.validated:1"
    leaves = sources(tree)
    assert [(leaf["ref"], leaf["kind"], leaf["sha256"]) for leaf in leaves] == [
        ("intents.csv:1", "source", sha256_file(Path("examples/intents.csv")))
    ]


def test_versions_are_monotonic_and_unchanged_content_is_not_a_new_version(registry_config):
    produced = run_data_stages(Path.cwd())
    first = record_stage(produced["split"], config=registry_config)
    again = record_stage(produced["split"], config=registry_config)
    assert [r.version for r in first] == [r.version for r in again] == [1]

    for version in (2, 3):
        write(Path("data/splits/train.parquet"), f"changed {version}")
        (ref,) = record_stage(produced["split"], config=registry_config)
        assert ref.version == version
    listed = api.versions("split.splits", config=registry_config)
    assert [r.version for r in listed] == [1, 2, 3]
    assert len({r.sha256 for r in listed}) == 3


def test_identical_content_is_stored_once(registry_config):
    write(Path("a/model.bin"), b"same bytes" * 1000)
    write(Path("b/copy.bin"), b"same bytes" * 1000)
    write(Path("c/data/x.bin"), b"same bytes" * 1000)
    refs = record_stage(
        Produced("train", {"first": Path("a/model.bin"), "second": Path("b/copy.bin"), "folder": Path("c")}, {}),
        config=registry_config,
    )
    assert refs[0].sha256 == refs[1].sha256
    store = blobs.open_store(registry_config.artifacts)
    stored = list(blobs.iter_blobs(store))
    assert [sha for sha, _ in stored] == [refs[0].sha256]  # one blob for three copies
    assert not list(blobs.iter_temporaries(store))


def test_run_grouping_and_entry_point_detection(registry_config, monkeypatch):
    produced = run_data_stages(Path.cwd())
    monkeypatch.setenv("TUNEFORGE_RUN_ID", "nightly-42")
    monkeypatch.setenv("DVC_STAGE", "validate")
    write(Path("params.yaml"), "split:\n  seed: 1\n")
    write(Path("dvc.lock"), "schema: '2.0'\n")
    refs = _record_all(registry_config, produced)
    run_ids = {ref.run_id for stage_refs in refs.values() for ref in stage_refs}
    assert run_ids == {"nightly-42"}
    run = api.show("split.splits", config=registry_config)["run"]
    assert run["entry_point"] == "dvc"
    assert run["params_hash"] == sha256_file(Path("params.yaml"))
    assert run["dvc_lock_hash"] == sha256_file(Path("dvc.lock"))
    assert _rows(registry_config, Run) == 1

    monkeypatch.delenv("TUNEFORGE_RUN_ID")
    monkeypatch.setenv("TUNEFORGE_ENTRYPOINT", "prefect")
    write(Path("data/splits/val.parquet"), "new val")
    (ref,) = record_stage(produced["split"], config=registry_config)
    assert ref.run_id != "nightly-42"
    assert api.show("split.splits", config=registry_config)["run"]["entry_point"] == "prefect"
    monkeypatch.setenv("TUNEFORGE_ENTRYPOINT", "airflow")
    with pytest.raises(RegistryError, match="entry point 'airflow' must be one of dvc, prefect, cli"):
        record_stage(produced["split"], config=registry_config)


def test_crash_mid_registration_leaves_no_rows_and_gc_removes_its_blobs(registry_config, monkeypatch):
    produced = run_data_stages(Path.cwd())
    import registry.record as record

    calls = []

    def crash_on_second(*args, **kwargs):
        calls.append(kwargs["name"])
        if len(calls) == 3:  # the source, the first output, then boom
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    real = record.add_artifact
    monkeypatch.setattr(record, "add_artifact", crash_on_second)
    with pytest.raises(RuntimeError, match="power cut"):
        record_stage(produced["validate"], config=registry_config)
    assert _rows(registry_config, Artifact) == 0
    assert _rows(registry_config, Run) == 0
    assert _rows(registry_config, Event) == 0

    report = api.gc(grace_s=0, config=registry_config)
    assert report["removed_blobs"] >= 4 and report["kept_blobs"] == 0
    monkeypatch.setattr(record, "add_artifact", real)
    refs = record_stage(produced["validate"], config=registry_config)
    assert [r.version for r in refs] == [1, 1, 1]
    assert api.verify(config=registry_config)["problems"] == []


def test_gc_keeps_referenced_and_young_blobs(registry_config):
    produced = run_data_stages(Path.cwd())
    _record_all(registry_config, produced)
    store = blobs.open_store(registry_config.artifacts)
    stray = blobs.put_file(store, write(Path("stray.bin"), b"nobody references me"))

    assert api.gc(grace_s=3600, config=registry_config)["removed_blobs"] == 0  # too young to be sure
    dry = api.gc(grace_s=0, dry_run=True, config=registry_config)
    assert dry["removed_blobs"] == 1 and dry["freed_bytes"] == len(b"nobody references me")
    assert api.gc(grace_s=0, config=registry_config)["removed_blobs"] == 1
    assert stray.sha256 not in {sha for sha, _ in blobs.iter_blobs(store)}
    assert api.verify(config=registry_config)["problems"] == []


def _register_candidate(config, name, *, f1, split="test", parity=True, drift=0.1, success=True, tag=""):
    """A model version with an onnx file, its metrics and a test split, as the later stages will register."""
    stage = f"v{tag or int(f1 * 1000)}"
    write(Path(f"{stage}/model.onnx"), f"onnx {stage}")
    split_dir = stage_dir(Path(f"{stage}/splits"), "split", {"test.parquet": split}, {},
                          {"drift_share": {"test_vs_train": drift}})
    validated = stage_dir(Path(f"{stage}/validated"), "validate", {"train.parquet": "v"}, {}, {"success": success})
    refs = record_stage(
        Produced(stage, {"onnx": Path(f"{stage}/model.onnx"), "splits": split_dir, "validated": validated}, {},
                 {"f1_macro": f1}),
        config=config,
    )
    by_key = {ref.name.split(".", 1)[1]: ref for ref in refs}
    return api.register_model(
        name,
        {"onnx_int8": by_key["onnx"], "test_split": by_key["splits"], "validated": by_key["validated"]},
        metrics={"metrics.f1_macro": f1, "onnx_int8.parity_passed": parity},
        config=config,
    )


def test_promotion_gates_record_every_decision_and_move_the_alias_only_on_pass(registry_config):
    v1 = _register_candidate(registry_config, "intent", f1=0.80)
    assert v1.version == 1 and v1.metrics["validated.success"] is True
    assert v1.metrics["test_split.drift_share.test_vs_train"] == 0.1

    first = api.promote("intent", 1, "production", policy=POLICY, config=registry_config)
    assert first.passed and first.moved and first.previous is None
    assert [g.passed for g in first.gates] == [True] * 5
    assert first.blobs_verified == 1 + 2 + 2  # onnx file + split folder (2 files) + validated folder (2 files)

    v2 = _register_candidate(registry_config, "intent", f1=0.805)  # better, but by less than 0.01
    result = api.promote("intent", v2.version, "production", policy=POLICY, config=registry_config)
    assert not result.passed and not result.moved
    failed = [g for g in result.gates if not g.passed]
    assert [g.gate for g in failed] == ["beats production holder on metrics.f1_macro"]
    assert failed[0].required == ">= 0.81 (intent:1: 0.8 + 0.01)" and failed[0].observed == "0.805"
    assert api.show("intent@production", config=registry_config)["version"] == 1

    v3 = _register_candidate(registry_config, "intent", f1=0.95, split="another test split")
    result = api.promote("intent", v3.version, "production", policy=POLICY, config=registry_config)
    gates = {g.gate: g for g in result.gates}
    assert not gates["same test split as intent:1 (test_split)"].passed
    assert "not comparable: different test split" in gates["beats production holder on metrics.f1_macro"].observed

    v4 = _register_candidate(registry_config, "intent", f1=0.9, parity=False, drift=0.4, success=False)
    result = api.promote("intent", v4.version, "production", policy=POLICY, config=registry_config)
    assert {g.gate for g in result.gates if not g.passed} == {
        "int8 parity (onnx_int8.parity_passed)", "data validation (validated.success)",
        "drift share (test_split.drift_share.test_vs_train)",
    }

    # Other content than v4's: the same content would be v4's artifacts again, metrics and all (meta.json,
    # which records them, is not part of an artifact's identity).
    v5 = _register_candidate(registry_config, "intent", f1=0.9, tag="good")
    passed = api.promote("intent", v5.version, "production", policy=POLICY, config=registry_config)
    assert passed.passed and passed.previous == 1

    log = api.events("intent", config=registry_config)
    decisions = [e for e in log if e["kind"] == "gate_decided"]
    assert [(e["version"], e["evidence"]["passed"]) for e in decisions] == [
        (1, True), (2, False), (3, False), (4, False), (5, True),
    ]
    assert decisions[2]["evidence"]["test_split_sha256"]["candidate"] != decisions[2]["evidence"]["test_split_sha256"][
        "holder"]
    assert decisions[1]["evidence"]["holder"] == "intent:1"
    assert [(e["kind"], e["version"]) for e in log if e["kind"] == "promoted"] == [("promoted", 1), ("promoted", 5)]
    assert all(e["actor"] == "tester" for e in log)


def test_forced_promotion_needs_a_reason_and_is_logged_as_forced(registry_config):
    _register_candidate(registry_config, "intent", f1=0.9)
    _register_candidate(registry_config, "intent", f1=0.1)
    api.promote("intent", 1, "production", policy=POLICY, config=registry_config)
    before = len(api.events(config=registry_config))
    for reason in (None, "", "   "):
        with pytest.raises(RegistryError, match="forced promotion needs a reason"):
            api.promote("intent", 2, "production", force=True, reason=reason, policy=POLICY, config=registry_config)
    assert len(api.events(config=registry_config)) == before  # refused before anything was recorded

    forced = api.promote("intent", 2, "production", force=True, reason="hotfix for incident 7", policy=POLICY,
                         config=registry_config)
    assert forced.forced and forced.moved and not forced.passed
    assert api.show("intent@production", config=registry_config)["version"] == 2
    last = api.events("intent", limit=2, config=registry_config)
    assert [(e["kind"], e["reason"]) for e in last] == [
        ("gate_decided", "hotfix for incident 7"), ("forced", "hotfix for incident 7"),
    ]


def test_rollback_steps_back_through_alias_history(registry_config):
    for f1 in (0.8, 0.85, 0.9):
        _register_candidate(registry_config, "intent", f1=f1)
    for version in (1, 2, 3):
        assert api.promote("intent", version, "production", policy=POLICY, config=registry_config).passed
    api.promote("intent", 1, "staging", policy=POLICY, config=registry_config)

    assert api.rollback("intent", "production", reason="bad canary", config=registry_config) == {
        "model": "intent", "alias": "production", "from": 3, "to": 2,
    }
    assert api.show("intent@production", config=registry_config)["version"] == 2
    assert api.rollback("intent", "production", config=registry_config)["to"] == 1
    with pytest.raises(RegistryError, match="intent@production has no previous holder"):
        api.rollback("intent", "production", config=registry_config)
    with pytest.raises(RegistryError, match="no previous holder"):
        api.rollback("intent", "staging", config=registry_config)
    with pytest.raises(RegistryError, match="unknown alias intent@canary"):
        api.rollback("intent", "canary", config=registry_config)
    rolled = [e for e in api.events("intent", config=registry_config) if e["kind"] == "rolled_back"]
    assert [(e["evidence"], e["reason"]) for e in rolled] == [({"from": 3, "to": 2}, "bad canary"),
                                                             ({"from": 2, "to": 1}, None)]
    assert api.models(config=registry_config)[0]["aliases"] == {"production": 1, "staging": 1}


def _tamper(config, sha256: str) -> Path:
    path = Path(blobs.blob_path(blobs.open_store(config.artifacts), sha256))
    path.write_bytes(path.read_bytes() + b" tampered")
    return path


def test_tampered_blob_is_refused_on_download_and_promotion(registry_config, tmp_path):
    version = _register_candidate(registry_config, "intent", f1=0.9)
    onnx = version.artifacts["onnx_int8"]
    blob = _tamper(registry_config, onnx.sha256)
    actual = sha256_file(blob)

    with pytest.raises(RegistryError) as raised:
        api.download(str(onnx), tmp_path / "out.onnx", config=registry_config)
    assert str(raised.value) == (
        f"{onnx}: stored blob does not match its hash (expected sha256 {onnx.sha256}, got {actual}): tampered"
    )
    assert not (tmp_path / "out.onnx").exists() and not list(tmp_path.glob(".out.onnx*"))

    events_before = len(api.events(config=registry_config))
    with pytest.raises(RegistryError, match=f"{onnx}: stored blob does not match its hash"):
        api.promote("intent", 1, "production", force=True, reason="even forced", policy=POLICY,
                    config=registry_config)
    assert len(api.events(config=registry_config)) == events_before
    assert api.models(config=registry_config)[0]["aliases"] == {}

    with pytest.raises(RegistryError, match="tampered"):
        api.resolve("intent:1", config=registry_config)
    report = api.verify("intent:1", config=registry_config)
    assert report["problems"] == [{"artifact": str(onnx), "expected": onnx.sha256, "actual": actual}]


def test_download_and_resolve_give_verified_copies(registry_config, tmp_path):
    produced = run_data_stages(Path.cwd())
    _record_all(registry_config, produced)
    version = _register_candidate(registry_config, "intent", f1=0.9)
    api.promote("intent", 1, "production", policy=POLICY, config=registry_config)

    folder = api.download("split.splits", tmp_path / "splits", config=registry_config)
    assert sha256_path(folder) == sha256_path(Path("data/splits"))
    file = api.download("validate.metrics:1", tmp_path, config=registry_config)
    assert file == tmp_path / "validate.json" and file.read_text() == Path("reports/metrics/validate.json").read_text()
    with pytest.raises(RegistryError, match="already exists"):
        api.download("split.splits", tmp_path / "splits", config=registry_config)

    resolved = api.resolve("intent@production", config=registry_config)
    assert sorted(p.name for p in resolved.iterdir()) == ["onnx_int8", "test_split", "validated"]
    assert (resolved / "onnx_int8" / "model.onnx").read_text() == Path("v900/model.onnx").read_text()
    assert sha256_path(resolved / "test_split") == version.artifacts["test_split"].sha256
    assert api.resolve("intent:1", config=registry_config) == resolved  # cached by content
    assert resolved.is_relative_to(Path(registry_config.cache).resolve())


def test_tags_on_versions(registry_config):
    _register_candidate(registry_config, "intent", f1=0.9)
    info = api.tag("intent:1", ["reviewed", "gpu-trained", "reviewed"], config=registry_config)
    assert info.tags == ["gpu-trained", "reviewed"]
    with pytest.raises(RegistryError, match="invalid tag"):
        api.tag("intent:1", ["no/slash"], config=registry_config)


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "a\\b", "a..b", ".hidden", "-x", "x" * 65, "sp ace", "é"])
def test_invalid_names_are_refused(bad):
    with pytest.raises(RegistryError, match="invalid"):
        validate_name(bad)


def test_names_refs_and_safe_source_names():
    assert validate_name("x" * 64) == "x" * 64
    assert parse_ref("split.splits:3").version == 3 and parse_ref("split.splits:3").name == "split.splits"
    assert parse_ref("intent@production").alias == "production"
    assert parse_ref("intent").version is None
    for bad in ("intent:0", "intent:x", "intent@../p", "a/b:1"):
        with pytest.raises(RegistryError):
            parse_ref(bad)
    assert safe_name("my data (v2).csv") == "my-data-v2-.csv"
    assert validate_name(safe_name("..weird..name..")) == "weird.name"


def test_invalid_names_in_api_calls_change_nothing(registry_config):
    _register_candidate(registry_config, "intent", f1=0.9)
    before = len(api.events(config=registry_config))
    with pytest.raises(RegistryError, match="invalid alias 'prod/x'"):
        api.promote("intent", 1, "prod/x", policy=POLICY, config=registry_config)
    with pytest.raises(RegistryError, match="invalid model name '../intent'"):
        api.register_model("../intent", {"x": "v900.onnx"}, config=registry_config)
    with pytest.raises(RegistryError, match="invalid stage name 'bad/stage'"):
        record_stage(Produced("bad/stage", {"x": Path("v900/model.onnx")}, {}), config=registry_config)
    assert len(api.events(config=registry_config)) == before


def test_unknown_model_version_alias_and_artifact(registry_config):
    _register_candidate(registry_config, "intent", f1=0.9)
    cases = {
        "nope": "unknown model or artifact 'nope'",
        "intent:7": r"unknown version intent:7 \(latest is 1\)",
        "intent@production": "unknown alias intent@production: model 'intent' has aliases: none",
        "v900.onnx:9": "unknown version v900.onnx:9: artifact 'v900.onnx' has no version 9",
        "v900.onnx@production": "aliases point at model versions",
    }
    for ref, message in cases.items():
        with pytest.raises(RegistryError, match=message):
            api.show(ref, config=registry_config)
    with pytest.raises(RegistryError, match="unknown model 'nope'"):
        api.promote("nope", 1, "production", policy=POLICY, config=registry_config)
    with pytest.raises(RegistryError, match="unknown version intent:2"):
        api.promote("intent", 2, "production", policy=POLICY, config=registry_config)
    with pytest.raises(RegistryError, match="unknown model or artifact 'v900.missing'"):
        api.register_model("intent", {"onnx_int8": "v900.missing"}, config=registry_config)
    assert [v.version for v in api.versions("intent", config=registry_config)] == [1]


def test_missing_output_is_refused_before_anything_is_written(registry_config):
    with pytest.raises(RegistryError, match="cannot register model: models/absent does not exist"):
        record_stage(Produced("train", {"model": Path("models/absent")}, {}), config=registry_config)
    assert not Path(registry_config.artifacts).exists() or not list(Path(registry_config.artifacts).rglob("*"))


def test_disabled_registry_records_nothing(registry_config):
    produced = run_data_stages(Path.cwd())
    disabled = registry_config.model_copy(update={"enabled": False})
    assert record_stage(produced["validate"], config=disabled) == []
    assert not Path(registry_config.artifacts).exists()


def _info(version, metrics):
    from registry.versions import VersionInfo

    return VersionInfo(model="m", version=version, run_id=None, created_at="", metrics=metrics, artifacts={})


def test_gate_boundaries_missing_values_and_flags():
    from registry.promotion import evaluate_gates

    policy = POLICY.model_copy(update={"min_improvement": 0.05})
    exact = _info(2, {"metrics.f1_macro": 0.7, "onnx_int8.parity_passed": 1, "validated.success": "true",
                      "test_split.drift_share.test_vs_train": 0.3})
    gates = evaluate_gates(exact, _info(1, {"metrics.f1_macro": 0.65}), "production", policy, ("abc", "abc"))
    assert [(g.gate, g.passed) for g in gates] == [
        ("min metrics.f1_macro", True),  # equal to the minimum passes
        ("int8 parity (onnx_int8.parity_passed)", True),
        ("data validation (validated.success)", True),
        ("drift share (test_split.drift_share.test_vs_train)", True),  # equal to the maximum passes
        ("same test split as m:1 (test_split)", True),
        ("beats production holder on metrics.f1_macro", True),  # 0.70 - 0.65 == 0.05 exactly
    ]
    bad = _info(2, {"metrics.f1_macro": float("nan"), "onnx_int8.parity_passed": 0.5, "validated.success": False,
                    "test_split.drift_share.test_vs_train": True})
    gates = evaluate_gates(bad, _info(1, {}), "production", policy, ("abc", None))
    assert [(g.observed, g.passed) for g in gates] == [
        ("nan", False), ("0.5", False), ("false", False), ("true", False), ("sha256 abc", False),
        ("nan (not comparable: different test split)", False),
    ]
    assert gates[4].required == "m:1 records no test_split"
    off = POLICY.model_copy(update={"parity_flag": None, "validation_flag": None, "drift_metric": None,
                                    "min_metrics": {}})
    assert [g.gate for g in evaluate_gates(_info(1, {}), None, "staging", off)] == [
        "beats staging holder on metrics.f1_macro"
    ]


def test_a_stage_that_copies_its_input_through_is_never_its_own_input(registry_config):
    produced = run_data_stages(Path.cwd())
    record_stage(produced["validate"], config=registry_config)
    record_stage(produced["split"], config=registry_config)
    write(Path("data/augmented/train.parquet"), Path("data/splits/train.parquet").read_bytes())  # augment off
    passthrough = Produced("augment", {"train": Path("data/augmented/train.parquet")},
                           {"train": Path("data/splits/train.parquet")})
    (first,) = record_stage(passthrough, config=registry_config)
    (again,) = record_stage(passthrough, config=registry_config)
    assert first == again and first.version == 1
    tree = api.lineage("augment.train", config=registry_config)
    assert [(n["ref"], n["role"]) for n in tree["inputs"]] == [("split.splits:1", "train (train.parquet)")]
