"""Rows of the registry: runs, artifacts (with manifests and lineage edges) and the event log.

Versions come from a per-name counter bumped by an atomic upsert in the same transaction as the row it
numbers, so concurrent writers get 1, 2, 3... with no gaps and no duplicates, on SQLite and PostgreSQL.
"""

import getpass
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.blobs import FileEntry
from registry.errors import RegistryError
from registry.names import Ref, validate_name
from registry.schema import Artifact, ArtifactFile, ArtifactName, Event, LineageEdge, Model, Run, utcnow

EVENT_KINDS = ("registered", "gate_decided", "promoted", "forced", "rolled_back", "drift_checked")


@dataclass(frozen=True)
class ArtifactRef:
    name: str
    version: int
    kind: str
    sha256: str
    size: int
    uri: str
    path: str
    stage: str | None
    run_id: str | None

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def artifact_ref(artifact: Artifact) -> ArtifactRef:
    return ArtifactRef(
        name=artifact.name, version=artifact.version, kind=artifact.kind, sha256=artifact.sha256,
        size=artifact.size, uri=artifact.uri, path=artifact.path, stage=artifact.stage, run_id=artifact.run_id,
    )


def actor() -> str:
    """Who is acting: TUNEFORGE_ACTOR, else the OS user."""
    explicit = os.environ.get("TUNEFORGE_ACTOR", "").strip()
    if explicit:
        return explicit[:128]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        return f"uid:{os.getuid()}"


def _upsert(session: Session):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise RegistryError(f"registry databases on {dialect} are not supported (use SQLite or PostgreSQL)")
    return insert


def next_artifact_version(session: Session, name: str) -> int:
    insert = _upsert(session)
    statement = (
        insert(ArtifactName)
        .values(name=name, latest_version=1)
        .on_conflict_do_update(
            index_elements=[ArtifactName.name], set_={"latest_version": ArtifactName.latest_version + 1}
        )
        .returning(ArtifactName.latest_version)
    )
    return session.execute(statement).scalar_one()


def next_model_version(session: Session, name: str) -> tuple[int, int]:
    """(model id, new version number); creates the model on its first version."""
    insert = _upsert(session)
    statement = (
        insert(Model)
        .values(name=name, latest_version=1, created_at=utcnow())
        .on_conflict_do_update(index_elements=[Model.name], set_={"latest_version": Model.latest_version + 1})
        .returning(Model.id, Model.latest_version)
    )
    model_id, version = session.execute(statement).one()
    return model_id, version


def add_event(
    session: Session,
    kind: str,
    subject: str,
    *,
    model: str | None = None,
    version: int | None = None,
    alias: str | None = None,
    reason: str | None = None,
    evidence: dict[str, Any] | None = None,
) -> Event:
    assert kind in EVENT_KINDS, kind
    event = Event(
        at=utcnow(), actor=actor(), kind=kind, subject=subject, model=model, version=version, alias=alias,
        reason=reason, evidence=evidence,
    )
    session.add(event)
    return event


def ensure_run(
    session: Session,
    run_id: str,
    *,
    entry_point: str,
    params_hash: str | None,
    git_commit: str | None,
    dvc_lock_hash: str | None,
    started: datetime,
    status: str = "succeeded",
) -> Run:
    """The run with this id, created on first use; a later stage of the same run extends its end time."""
    run = session.get(Run, run_id)
    now = utcnow()
    if run is None:
        run = Run(
            id=run_id, entry_point=entry_point, params_hash=params_hash, git_commit=git_commit,
            dvc_lock_hash=dvc_lock_hash, started_at=started, ended_at=now, status=status,
        )
        session.add(run)
        session.flush()
    else:
        run.ended_at = now
        run.params_hash = run.params_hash or params_hash
        run.git_commit = run.git_commit or git_commit
        run.dvc_lock_hash = dvc_lock_hash or run.dvc_lock_hash
    return run


def find_artifact_by_sha(session: Session, sha256: str, exclude: frozenset[str] = frozenset()) -> Artifact | None:
    """The newest artifact with this content, preferring a stage's output over a raw source.

    `exclude` names the stage's own outputs: a stage that copies an input through unchanged must not
    become its own input when it registers again.
    """
    candidates = session.scalars(
        select(Artifact).where(Artifact.sha256 == sha256, Artifact.name.not_in(exclude)).order_by(Artifact.id.desc())
    ).all()
    produced = [artifact for artifact in candidates if artifact.kind != "source"]
    return (produced or candidates or [None])[0]


def find_artifact_containing(
    session: Session, sha256: str, exclude: frozenset[str] = frozenset()
) -> tuple[Artifact, str] | None:
    """A directory artifact holding a file with this content (a stage that read one file of a dir)."""
    row = session.execute(
        select(Artifact, ArtifactFile.path)
        .join(ArtifactFile, ArtifactFile.artifact_id == Artifact.id)
        .where(ArtifactFile.sha256 == sha256, Artifact.name.not_in(exclude))
        .order_by(Artifact.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def latest_artifact(session: Session, name: str) -> Artifact | None:
    return session.scalars(
        select(Artifact).where(Artifact.name == name).order_by(Artifact.version.desc()).limit(1)
    ).first()


def input_ids(session: Session, artifact: Artifact) -> set[int]:
    return set(session.scalars(select(LineageEdge.input_artifact_id).where(LineageEdge.artifact_id == artifact.id)))


def add_artifact(
    session: Session,
    *,
    name: str,
    kind: str,
    sha256: str,
    size: int,
    is_dir: bool,
    uri: str,
    path: str,
    stage: str | None,
    run_id: str | None,
    meta: dict[str, Any],
    files: list[FileEntry],
    inputs: list[tuple[int, str]],
) -> tuple[Artifact, bool]:
    """(artifact, created). Identical content with identical inputs as the newest version is not a new one."""
    validate_name(name, "artifact name")
    latest = latest_artifact(session, name)
    if latest is not None and latest.sha256 == sha256 and input_ids(session, latest) == {i for i, _ in inputs}:
        return latest, False
    artifact = Artifact(
        name=name, version=next_artifact_version(session, name), kind=kind, sha256=sha256, size=size,
        is_dir=is_dir, uri=uri, path=path, stage=stage, run_id=run_id, meta=meta, created_at=utcnow(),
    )
    session.add(artifact)
    session.flush()
    session.add_all(ArtifactFile(artifact_id=artifact.id, path=f.path, sha256=f.sha256, size=f.size) for f in files)
    roles: dict[int, list[str]] = {}
    for input_id, role in inputs:
        roles.setdefault(input_id, []).append(role)
    session.add_all(
        LineageEdge(artifact_id=artifact.id, input_artifact_id=input_id, role=", ".join(sorted(names)))
        for input_id, names in roles.items()
    )
    add_event(session, "registered", f"artifact {name}:{artifact.version}", evidence={"sha256": sha256})
    return artifact, True


def get_artifact(session: Session, ref: Ref) -> Artifact:
    if ref.alias is not None:
        raise RegistryError(f"{ref}: aliases point at model versions, and there is no model {ref.name!r}")
    query = select(Artifact).where(Artifact.name == ref.name)
    if ref.version is None:
        artifact = session.scalars(query.order_by(Artifact.version.desc()).limit(1)).first()
        if artifact is None:
            raise RegistryError(f"unknown model or artifact {ref.name!r}")
        return artifact
    artifact = session.scalars(query.where(Artifact.version == ref.version)).first()
    if artifact is None:
        if latest_artifact(session, ref.name) is None:
            raise RegistryError(f"unknown model or artifact {ref.name!r}")
        raise RegistryError(f"unknown version {ref}: artifact {ref.name!r} has no version {ref.version}")
    return artifact


def manifest(session: Session, artifact: Artifact) -> list[FileEntry]:
    rows = session.scalars(select(ArtifactFile).where(ArtifactFile.artifact_id == artifact.id)).all()
    return [FileEntry(row.path, row.sha256, row.size) for row in rows]


def has_model(session: Session, name: str) -> bool:
    return session.scalars(select(Model.id).where(Model.name == name)).first() is not None
