"""record_stage: the one call that registers what a stage produced, with lineage to what it read.

tuneforge/pipeline/runner.py calls it after a stage's run() succeeds, whether the stage runs under `dvc repro`, the
Prefect flow or by hand; a new stage needs no registry code of its own.
"""

import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from registry import blobs
from registry.config import RegistryConfig
from registry.connection import opened
from registry.db import reading, transaction
from registry.errors import RegistryError
from registry.names import safe_name, validate_name
from registry.schema import utcnow
from registry.store import (
    ArtifactRef,
    add_artifact,
    artifact_ref,
    ensure_run,
    find_artifact_by_sha,
    find_artifact_containing,
    latest_artifact,
)
from tuneforge.base.outputs import Produced, git_commit, is_execution_record, sha256_path
from tuneforge.base.secrets import for_records

ENTRY_POINTS = ("dvc", "prefect", "cli")
DATA_SUFFIXES = (".parquet", ".csv", ".jsonl")
MODEL_SUFFIXES = (".onnx", ".safetensors", ".bin", ".pt", ".gguf")
MODEL_MARKERS = ("config.json", "adapter_config.json", "model.safetensors", "pytorch_model.bin")


def record_stage(
    produced: Produced,
    *,
    config: RegistryConfig,
    params_hash: str | None = None,
    entry_point: str | None = None,
    kinds: Mapping[str, str] | None = None,
) -> list[ArtifactRef]:
    """Register each output of `produced` as artifact `<stage>.<key>`, linked to its inputs; one transaction.

    Inputs whose content is a registered artifact (or a file of one) link to it; any other input is
    registered as a `source` artifact named after its file, so lineage always ends at a raw file's hash.
    `kinds` overrides the inferred kind per output key. Returns the outputs' refs in `produced` order.
    """
    if not config.enabled:
        return []
    stage = validate_name(produced.stage, "stage name")
    names = {key: validate_name(f"{stage}.{key}", "artifact name") for key in produced.outputs}
    own = frozenset(names.values())
    run_id = validate_name(os.environ.get("TUNEFORGE_RUN_ID") or uuid.uuid4().hex, "run id (TUNEFORGE_RUN_ID)")
    entry = detect_entry_point(entry_point)
    outputs = {key: Path(path) for key, path in produced.outputs.items()}
    for key, path in {**outputs, **produced.inputs}.items():
        if not Path(path).exists():
            raise RegistryError(f"{stage}: cannot register {key}: {path} does not exist")
    stage_meta = _stage_meta(outputs) or {"metrics": produced.metrics}
    input_hashes = _input_hashes(produced.inputs, stage_meta)

    with opened(config) as registry:
        # Blobs first: content-addressed, so a crash before the commit below leaves only unreferenced
        # blobs (which `gc` removes), never a partial record. Inputs already registered are not re-read.
        stored = {key: _store(registry.store, path) for key, path in outputs.items()}
        with reading(registry.engine) as session:
            unknown = [
                key for key, path in produced.inputs.items()
                if _known_input(session, path, input_hashes[key], own) is None
            ]
        sources = {key: _store(registry.store, Path(produced.inputs[key])) for key in unknown}
        commit = git_commit()
        with transaction(registry.engine) as session:
            ensure_run(
                session, run_id, entry_point=entry, params_hash=params_hash or _file_sha256("params.yaml"),
                git_commit=commit, dvc_lock_hash=_file_sha256("dvc.lock"),
                started=utcnow() - timedelta(seconds=float(stage_meta.get("wall_time_s") or 0)),
            )
            edges = []
            for key, path in produced.inputs.items():
                artifact_id, inner = _known_input(session, path, input_hashes[key], own) or _add_source(
                    session, key, Path(path), input_hashes[key], sources.get(key), run_id
                )
                edges.append((artifact_id, f"{key} ({inner})" if inner else key))
            registered, changed = {}, False
            # Execution records last: whether they are new depends on whether anything else is.
            for key in sorted(outputs, key=lambda k: is_execution_record(outputs[k].name)):
                path = outputs[key]
                sha256, size, files, uri = stored[key]
                if is_execution_record(path.name) and not changed:
                    # A stage's meta.json given as an output of its own records only this execution (wall
                    # time): when every result is an existing version, so is the run's record.
                    latest = latest_artifact(session, names[key])
                    if latest is not None:
                        registered[key] = latest
                        continue
                artifact, created = add_artifact(
                    session, name=names[key], kind=(kinds or {}).get(key) or infer_kind(path), sha256=sha256,
                    size=size, is_dir=path.is_dir(), uri=uri, path=_display(path), stage=stage, run_id=run_id,
                    meta=_own_meta(path) or stage_meta, files=files, inputs=edges,
                )
                registered[key], changed = artifact, changed or created
            return [artifact_ref(registered[key]) for key in outputs]


def _known_input(session, path: Path, sha256: str, own: frozenset[str]) -> tuple[int, str] | None:
    """(artifact id, file inside it or "") of a registered artifact with this content, if any."""
    known = find_artifact_by_sha(session, sha256, own)
    if known is not None:
        return known.id, ""
    if Path(path).is_file():
        container = find_artifact_containing(session, sha256, own)
        if container is not None:
            return container[0].id, container[1]
    return None


def _add_source(session, key: str, path: Path, sha256: str, stored, run_id: str) -> tuple[int, str]:
    """Register an input nobody produced (a raw data file) as a `source` artifact named after the file."""
    if stored is None:  # registered by another writer between our look-up and now: it was looked up again
        raise RegistryError(f"input {key} ({path}) vanished from the registry while registering")
    stored_sha, size, files, uri = stored
    if stored_sha != sha256:
        raise RegistryError(f"input {key} ({path}) changed while it was being registered")
    artifact, _ = add_artifact(
        session, name=safe_name(path.name), kind="source", sha256=sha256, size=size, is_dir=path.is_dir(),
        uri=uri, path=_display(path), stage=None, run_id=run_id, meta={}, files=files, inputs=[],
    )
    return artifact.id, ""


def _store(store: blobs.BlobStore, path: Path) -> tuple[str, int, list[blobs.FileEntry], str]:
    """(sha256, size, manifest, uri) after putting the file or every file of the directory in the store."""
    if path.is_dir():
        sha256, files = blobs.put_directory(store, path)
        return sha256, sum(f.size for f in files), files, blobs.uri(store, blobs.manifest_path(store, sha256))
    entry = blobs.put_file(store, path)
    return entry.sha256, entry.size, [], blobs.uri(store, blobs.blob_path(store, entry.sha256))


def _input_hashes(inputs: Mapping[str, Path], meta: dict[str, Any]) -> dict[str, str]:
    """Input hashes as meta.json recorded them (never re-derived), hashing only inputs it does not list."""
    recorded = meta.get("inputs") if isinstance(meta.get("inputs"), dict) else {}
    hashes = {}
    for key, path in inputs.items():
        entry = recorded.get(key) if isinstance(recorded.get(key), dict) else {}
        same_path = entry.get("path") is not None and Path(entry["path"]) == Path(path)
        hashes[key] = entry["sha256"] if same_path and entry.get("sha256") else sha256_path(Path(path))
    return hashes


def _stage_meta(outputs: Mapping[str, Path]) -> dict[str, Any]:
    """The stage's meta.json: inside one of its output folders, or itself an output file."""
    for path in outputs.values():
        meta = _own_meta(path)
        if meta:
            return meta
    for path in outputs.values():
        if path.is_file() and path.name == "meta.json":
            return _read_meta(path)
    return {}


def _own_meta(path: Path) -> dict[str, Any]:
    return _read_meta(path / "meta.json") if (path / "meta.json").is_file() else {}


def _read_meta(meta_file: Path) -> dict[str, Any]:
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise RegistryError(f"{meta_file}: not valid JSON") from None
    # write_meta masks passwords already; a meta.json from elsewhere (an older run, a hand edit) is masked here.
    return for_records(meta) if isinstance(meta, dict) else {}


def infer_kind(path: Path) -> str:
    """dataset, model, metrics, report or file/directory, from what the output holds."""
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in DATA_SUFFIXES:
            return "dataset"
        if suffix in MODEL_SUFFIXES:
            return "model"
        if suffix == ".json" and "metrics" in path.parts:
            return "metrics"
        if path.name == "meta.json":
            return "meta"
        if suffix in (".html", ".md") or (suffix == ".json" and "reports" in path.parts):
            return "report"
        return "file"
    names = {child.name for child in path.rglob("*") if child.is_file()}
    suffixes = {Path(name).suffix.lower() for name in names}
    if names & set(MODEL_MARKERS) or suffixes & set(MODEL_SUFFIXES):
        return "model"
    if suffixes & set(DATA_SUFFIXES):
        return "dataset"
    if suffixes & {".html", ".md"}:
        return "report"
    return "directory"


def detect_entry_point(explicit: str | None = None) -> str:
    """Argument, else TUNEFORGE_ENTRYPOINT, else `dvc repro` (it sets DVC_STAGE for stage commands),
    else a Prefect flow run (PREFECT__FLOW_RUN_ID), else "cli"."""
    entry = explicit or os.environ.get("TUNEFORGE_ENTRYPOINT", "").strip()
    if not entry:
        if os.environ.get("DVC_STAGE"):
            entry = "dvc"
        elif os.environ.get("PREFECT__FLOW_RUN_ID"):
            entry = "prefect"
        else:
            entry = "cli"
    if entry not in ENTRY_POINTS:
        raise RegistryError(f"entry point {entry!r} must be one of {', '.join(ENTRY_POINTS)}")
    return entry


def _file_sha256(name: str) -> str | None:
    path = Path(name)
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _display(path: Path) -> str:
    """The path as the pipeline names it: relative to the working directory when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path.resolve())
