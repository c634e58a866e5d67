"""The registry's Python API: the same verbs as `tuneforge registry ...`.

Every function takes the `registry:` section of params.yaml (RegistryConfig; defaults when omitted) and
returns plain data (dataclasses with to_json, or dicts). Failures raise RegistryError with one clear line
and leave the registry unchanged (a refused promotion still records its gate decision: that is the audit).

    from registry import api
    model_dir = api.resolve("intent@production")   # a verified local copy, one folder per role
"""

import hashlib
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from registry import blobs
from registry.config import PromotionConfig, RegistryConfig
from registry.connection import opened
from registry.db import reading, transaction
from registry.errors import RegistryError
from registry.integrity import (
    build,
    check_blobs,
    check_folder,
    discard,
    expected_blobs,
    expected_layout,
    file_name,
    into_place,
    materialize,
    require_intact,
)
from registry.lineage import artifact_tree, version_tree
from registry.names import Ref, parse_ref, parse_version, validate_name
from registry.promotion import Gate, evaluate_gates, evidence
from registry.record import record_stage
from registry.schema import Artifact, ArtifactFile, ArtifactName, Event, Model, ModelVersion, Run
from registry.store import (
    ArtifactRef,
    add_event,
    artifact_ref,
    find_artifact_by_sha,
    get_artifact,
    has_model,
    manifest,
)
from registry.versions import (
    VersionInfo,
    add_tags,
    get_model,
    get_version,
    holder,
    list_models,
    list_versions,
    register_version,
    role_artifacts,
    rollback_alias,
    set_alias,
    version_info,
)
from tuneforge.base.outputs import sha256_path

__all__ = [
    "artifacts", "download", "events", "gc", "lineage", "models", "promote", "record_drift_check", "record_stage",
    "register_model", "resolve", "rollback", "show", "tag", "verify", "versions",
]


@dataclass(frozen=True)
class PromotionResult:
    model: str
    version: int
    alias: str
    passed: bool
    forced: bool
    moved: bool
    previous: int | None
    gates: list[Gate]
    blobs_verified: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _ref(ref: str | Ref) -> Ref:
    return ref if isinstance(ref, Ref) else parse_ref(ref)


def models(*, config: RegistryConfig | None = None) -> list[dict[str, Any]]:
    with opened(config) as registry, reading(registry.engine) as session:
        return list_models(session)


def artifacts(*, config: RegistryConfig | None = None) -> list[dict[str, Any]]:
    """Every artifact name with its latest version."""
    with opened(config) as registry, reading(registry.engine) as session:
        rows = session.execute(
            select(Artifact).join(ArtifactName, ArtifactName.name == Artifact.name)
            .where(Artifact.version == ArtifactName.latest_version).order_by(Artifact.name)
        ).scalars().all()
        return [artifact_ref(row).to_json() for row in rows]


def versions(name: str, *, config: RegistryConfig | None = None) -> list[VersionInfo] | list[ArtifactRef]:
    """A model's versions, or an artifact's when `name` is not a model."""
    validate_name(name)
    with opened(config) as registry, reading(registry.engine) as session:
        if has_model(session, name):
            return list_versions(session, get_model(session, name))
        rows = session.scalars(select(Artifact).where(Artifact.name == name).order_by(Artifact.version)).all()
        if not rows:
            raise RegistryError(f"unknown model or artifact {name!r}")
        return [artifact_ref(row) for row in rows]


def show(ref: str, *, config: RegistryConfig | None = None) -> dict[str, Any]:
    """A model (NAME), a model version (NAME:VERSION, NAME@ALIAS) or an artifact version, in full."""
    parsed = _ref(ref)
    with opened(config) as registry, reading(registry.engine) as session:
        if has_model(session, parsed.name):
            model = get_model(session, parsed.name)
            if parsed.version is None and parsed.alias is None:
                return {"type": "model", **next(m for m in list_models(session) if m["name"] == model.name)}
            info = version_info(session, *get_version(session, parsed))
            run = session.get(Run, info.run_id) if info.run_id else None
            return {"type": "model_version", **info.to_json(), "run": _run_json(run)}
        artifact = get_artifact(session, parsed)
        run = session.get(Run, artifact.run_id) if artifact.run_id else None
        files = session.scalars(select(ArtifactFile).where(ArtifactFile.artifact_id == artifact.id)).all()
        return {
            "type": "artifact", **artifact_ref(artifact).to_json(), "metadata": artifact.meta,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in files],
            "created_at": artifact.created_at.isoformat(timespec="seconds"), "run": _run_json(run),
        }


def _run_json(run: Run | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.id, "entry_point": run.entry_point, "status": run.status, "params_hash": run.params_hash,
        "git_commit": run.git_commit, "dvc_lock_hash": run.dvc_lock_hash,
        "started_at": run.started_at.isoformat(timespec="seconds"),
        "ended_at": run.ended_at.isoformat(timespec="seconds") if run.ended_at else None,
    }


def lineage(ref: str, *, config: RegistryConfig | None = None) -> dict[str, Any]:
    """The tree from a model version or an artifact back to its raw sources, with hashes."""
    parsed = _ref(ref)
    with opened(config) as registry, reading(registry.engine) as session:
        if has_model(session, parsed.name):
            return version_tree(session, *get_version(session, parsed))
        return artifact_tree(session, get_artifact(session, parsed))


def artifact_with_content(path: str | Path, *, config: RegistryConfig | None = None) -> ArtifactRef | None:
    """The newest stage output whose content is exactly `path` (file or folder), or None: how a step that
    only sees workspace paths (the register stage) names the artifacts a pipeline run produced."""
    digest = sha256_path(Path(path))
    with opened(config) as registry, reading(registry.engine) as session:
        artifact = find_artifact_by_sha(session, digest)
        return artifact_ref(artifact) if artifact is not None and artifact.kind != "source" else None


def register_model(
    name: str,
    artifacts: Mapping[str, str | ArtifactRef],
    *,
    metrics: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    run_id: str | None = None,
    reason: str | None = None,
    config: RegistryConfig | None = None,
) -> VersionInfo:
    """A new version of model `name` grouping artifacts by role, e.g. {"student": "distill.model:3",
    "onnx_int8": "export.onnx", "metrics": "evaluate.metrics", "test_split": "split.splits"}.

    The version's metrics are each role's recorded metrics as `role.metric`, plus `metrics` given here.
    """
    validate_name(name, "model name")
    refs = {validate_name(role, "role"): (str(a) if isinstance(a, ArtifactRef) else a) for role, a in artifacts.items()}
    with opened(config) as registry, transaction(registry.engine) as session:
        roles = {role: get_artifact(session, _ref(ref)) for role, ref in refs.items()}
        if run_id is None:
            run_ids = {artifact.run_id for artifact in roles.values() if artifact.run_id}
            run_id = run_ids.pop() if len(run_ids) == 1 else None
        elif session.get(Run, run_id) is None:
            raise RegistryError(f"unknown run {run_id!r}")
        version = register_version(session, name, roles, metrics=metrics, tags=tags, run_id=run_id, reason=reason)
        return version_info(session, get_model(session, name), version)


def tag(ref: str, tags: Iterable[str], *, config: RegistryConfig | None = None) -> VersionInfo:
    parsed = _ref(ref)
    with opened(config) as registry, transaction(registry.engine) as session:
        model, version = get_version(session, parsed)
        add_tags(session, version, tags)
        session.flush()
        return version_info(session, model, version)


def promote(
    name: str,
    version: int | str,
    to_alias: str,
    *,
    force: bool = False,
    reason: str | None = None,
    policy: PromotionConfig | None = None,
    config: RegistryConfig | None = None,
) -> PromotionResult:
    """Evaluate the gates for NAME:VERSION -> alias, record the decision, move the alias only on pass.

    `force` moves it anyway (event `forced`) and needs a reason. Every blob of the version is verified
    first: a missing or tampered blob refuses the promotion, forced or not, before anything is recorded.
    """
    policy = policy or PromotionConfig()
    validate_name(to_alias, "alias")
    reason = (reason or "").strip() or None
    if force and not reason:
        raise RegistryError("a forced promotion needs a reason (--reason \"...\")")
    candidate_ref = Ref(validate_name(name, "model name"), version=parse_version(version))
    with opened(config) as registry:
        with reading(registry.engine) as session:
            model, candidate = get_version(session, candidate_ref)
            current = holder(session, model, to_alias)
            current_id = current.id if current is not None else None
            if current_id == candidate.id:
                raise RegistryError(f"{candidate_ref} already holds {name}@{to_alias}")
            candidate_info = version_info(session, model, candidate)
            holder_info = version_info(session, model, current) if current else None
            splits = (
                test_split_sha256(session, candidate, policy),
                test_split_sha256(session, current, policy) if current else None,
            )
            expected = [
                blob for artifact in role_artifacts(session, candidate).values()
                for blob in expected_blobs(session, artifact)
            ]
        checked = require_intact(registry.store, expected)
        gates = evaluate_gates(candidate_info, holder_info, to_alias, policy, splits)
        passed = all(gate.passed for gate in gates)
        moved = passed or force
        with transaction(registry.engine) as session:
            model, candidate = get_version(session, candidate_ref)
            now_holder = holder(session, model, to_alias)
            if (now_holder.id if now_holder else None) != current_id:
                raise RegistryError(f"{name}@{to_alias} moved while the gates were evaluated; run promote again")
            facts = evidence(candidate_info, holder_info, gates, policy, splits)
            add_event(session, "gate_decided", f"model {candidate_ref} -> {to_alias}", model=name,
                      version=candidate.version, alias=to_alias, reason=reason, evidence=facts)
            if moved:
                set_alias(session, model, candidate, to_alias)
                kind = "promoted" if passed else "forced"
                add_event(session, kind, f"model {candidate_ref} -> {to_alias}", model=name,
                          version=candidate.version, alias=to_alias, reason=reason,
                          evidence={"previous": holder_info.version if holder_info else None, "gates_passed": passed})
    return PromotionResult(
        model=name, version=candidate_info.version, alias=to_alias, passed=passed, forced=moved and not passed,
        moved=moved, previous=holder_info.version if holder_info else None, gates=gates, blobs_verified=checked,
    )


def test_split_sha256(session, version, policy: PromotionConfig) -> str | None:
    """The hash identifying a version's test split: its test_split_role artifact, or for a folder artifact
    the file `test_split_file` inside it (a folder's own hash also covers the train and val files, which a
    retrained version may change while it is judged on the same test rows)."""
    artifact = role_artifacts(session, version).get(policy.test_split_role)
    if artifact is None:
        return None
    if not artifact.is_dir or not policy.test_split_file:
        return artifact.sha256
    return next((f.sha256 for f in manifest(session, artifact) if f.path == policy.test_split_file), None)


def rollback(name: str, alias: str, *, reason: str | None = None, config: RegistryConfig | None = None) -> dict:
    """Return the alias to its previous holder; returns {"model", "alias", "from", "to"}."""
    with opened(config) as registry, transaction(registry.engine) as session:
        model = get_model(session, name)
        came_from, went_to = rollback_alias(session, model, alias)
        add_event(session, "rolled_back", f"model {name}@{alias}", model=name, version=went_to.version, alias=alias,
                  reason=(reason or "").strip() or None, evidence={"from": came_from.version, "to": went_to.version})
        return {"model": name, "alias": alias, "from": came_from.version, "to": went_to.version}


def record_drift_check(
    ref: str,
    report: str | ArtifactRef,
    evidence: Mapping[str, Any],
    *,
    alias: str | None = None,
    config: RegistryConfig | None = None,
) -> dict[str, Any]:
    """Append a `drift_checked` event to model version `ref` (NAME:VERSION or NAME@ALIAS): the drift
    monitor's verdict on a batch of new data, with its registered report artifact and the evidence."""
    parsed = _ref(ref)
    with opened(config) as registry, transaction(registry.engine) as session:
        model, version = get_version(session, parsed)
        artifact = get_artifact(session, _ref(str(report)))
        report_ref = f"{artifact.name}:{artifact.version}"
        subject = f"model {model.name}:{version.version} <- {report_ref}"
        event = add_event(session, "drift_checked", subject, model=model.name, version=version.version,
                          alias=alias, evidence={**evidence, "report": report_ref})
        session.flush()
        return {"id": event.id, "subject": subject, "model": model.name, "version": version.version,
                "report": report_ref}


def events(
    name: str | None = None, *, limit: int = 50, config: RegistryConfig | None = None
) -> list[dict[str, Any]]:
    """The newest events, optionally of one model, oldest first."""
    with opened(config) as registry, reading(registry.engine) as session:
        query = select(Event).order_by(Event.id.desc()).limit(limit)
        if name is not None:
            query = query.where(Event.model == validate_name(name, "model name"))
        rows = list(reversed(session.scalars(query).all()))
        return [
            {
                "id": e.id, "at": e.at.isoformat(timespec="seconds"), "actor": e.actor, "kind": e.kind,
                "subject": e.subject, "model": e.model, "version": e.version, "alias": e.alias,
                "reason": e.reason, "evidence": e.evidence,
            }
            for e in rows
        ]


def _plan(session, parsed: Ref) -> tuple[str, dict[str, Artifact]]:
    """(what, {role or "": artifact}) for a model version or an artifact reference."""
    if has_model(session, parsed.name):
        model, version = get_version(session, parsed)
        return f"{model.name}:{version.version}", role_artifacts(session, version)
    artifact = get_artifact(session, parsed)
    return f"{artifact.name}:{artifact.version}", {"": artifact}


def download(ref: str, dest: str | Path, *, config: RegistryConfig | None = None) -> Path:
    """A verified copy at `dest`: a file artifact as that file (or inside `dest` when it is a folder), a
    directory artifact as that folder, a model version as a folder with one sub-folder per role."""
    parsed, dest = _ref(ref), Path(dest)
    with opened(config) as registry, reading(registry.engine) as session:
        _, parts = _plan(session, parsed)
        single = parts.get("")
        if single is not None and not single.is_dir:
            target = dest / file_name(single) if dest.is_dir() else dest
            if target.exists():
                raise RegistryError(f"{target} already exists; choose a new destination")
            built = into_place(lambda folder: materialize(session, registry.store, single, folder),
                               target.with_name(f".{target.name}.download"))
            (built / file_name(single)).rename(target)
            shutil.rmtree(built)
            return target
        return into_place(lambda folder: build(session, registry.store, parts, folder), dest)


def resolve(ref: str, *, config: RegistryConfig | None = None) -> Path:
    """A local folder holding a verified copy of the model version (or artifact) `ref` refers to.

    `NAME@production` gives the production version: one sub-folder per role (a file artifact inside its
    role's folder under its own file name). Copies are cached by content under `registry.cache`.

    A cached copy is re-hashed file by file on every call, against the registry's recorded hashes: a file
    changed, missing or added there is not served; the copy is rebuilt from the blob store (whose blobs are
    verified as they are copied out), and a bad blob is refused with one line. Not a size-and-mtime
    shortcut: an edit can keep both (same-size bytes, `touch -r`), and resolve runs once per process that
    loads a model (evaluate, the monitor, a server at start), where hashing the files costs about as much
    as loading them.
    """
    parsed = _ref(ref)
    config = config or RegistryConfig()
    with opened(config) as registry, reading(registry.engine) as session:
        what, parts = _plan(session, parsed)
        target = _cache_folder(registry.cache, parts)
        layout = expected_layout(session, parts)
        for _ in range(3):  # a concurrent resolve may place (or discard) the same folder between our steps
            if target.is_dir():
                if not check_folder(target, layout):
                    return target
                discard(target)
            try:
                return into_place(lambda folder: build(session, registry.store, parts, folder), target)
            except RegistryError:
                if not target.is_dir():  # not another process placing the same content first: a bad blob
                    raise
        raise RegistryError(f"{target}: the cached copy of {what} keeps changing while it is verified")


def _cache_folder(cache: Path, parts: dict[str, Artifact]) -> Path:
    """Where resolve keeps a verified copy of `parts`: named by the roles and content it holds."""
    key = hashlib.sha256("".join(f"{r}\t{a.sha256}\n" for r, a in sorted(parts.items())).encode()).hexdigest()
    return cache.resolve() / ("models" if "" not in parts else "artifacts") / key


def verify(
    ref: str | None = None, *, cache: bool = True, config: RegistryConfig | None = None
) -> dict[str, Any]:
    """Re-hash the stored blobs of `ref` (or of every artifact), and the copies resolve keeps of it (or of
    every artifact and model version) in the cache; {"checked", "artifacts", "cached", "problems"}.
    `cache=False` checks the store only: for a caller that goes on to resolve, which repairs the cache."""
    with opened(config) as registry, reading(registry.engine) as session:
        if ref is None:
            parts = {str(a.id): a for a in session.scalars(select(Artifact).order_by(Artifact.id))}
            plans = [(f"{a.name}:{a.version}", {"": a}) for a in parts.values()]
            plans += [
                (f"{session.get(Model, version.model_id).name}:{version.version}", role_artifacts(session, version))
                for version in session.scalars(select(ModelVersion).order_by(ModelVersion.id))
            ]
        else:
            what, parts = _plan(session, _ref(ref))
            plans = [(what, parts)]
        expected, problems = [], []
        for artifact in parts.values():
            try:
                expected.extend(expected_blobs(session, artifact))
            except RegistryError as exc:
                problems.append({"artifact": f"{artifact.name}:{artifact.version}", "expected": artifact.sha256,
                                 "actual": exc.message})
        problems.extend(check_blobs(registry.store, expected))
        cached = 0
        for what, plan in plans if cache else []:
            folder = _cache_folder(registry.cache, plan)
            if not folder.is_dir():
                continue
            cached += 1
            try:
                problems.extend(check_folder(folder, expected_layout(session, plan)))
            except RegistryError as exc:  # its manifest is bad: already reported above for the artifact
                problems.append({"artifact": f"cached {what} in {folder}", "expected": "", "actual": exc.message})
        return {"checked": len({sha for _, sha in expected}), "artifacts": len(parts), "cached": cached,
                "problems": problems}


def gc(*, grace_s: float = 3600.0, dry_run: bool = False, config: RegistryConfig | None = None) -> dict[str, Any]:
    """Delete blobs, manifests and temporary files no artifact references and older than `grace_s`.

    The grace period protects a registration in flight: its blobs are written before its rows commit.
    """
    with opened(config) as registry:
        with reading(registry.engine) as session:
            file_blobs = set(session.scalars(select(Artifact.sha256).where(Artifact.is_dir.is_(False))))
            file_blobs |= set(session.scalars(select(ArtifactFile.sha256)))
            manifests = set(session.scalars(select(Artifact.sha256).where(Artifact.is_dir.is_(True))))
        store = registry.store
        report = {"removed_blobs": 0, "removed_manifests": 0, "removed_temporaries": 0, "freed_bytes": 0,
                  "kept_blobs": 0, "dry_run": dry_run}
        stored = list(blobs.iter_blobs(store))
        candidates = [("removed_blobs", path) for sha, path in stored if sha not in file_blobs]
        report["kept_blobs"] = len(stored) - len(candidates)
        candidates += [("removed_manifests", p) for sha, p in blobs.iter_manifests(store) if sha not in manifests]
        candidates += [("removed_temporaries", path) for path in blobs.iter_temporaries(store)]
        for counter, path in candidates:
            if blobs.age_s(store, path) < grace_s:
                continue
            report[counter] += 1
            report["freed_bytes"] += store.fs.size(path) if dry_run else blobs.remove(store, path)
        return report
