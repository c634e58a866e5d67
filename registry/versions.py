"""Registered models: versions that group artifacts by role, aliases with history, tags."""

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.errors import RegistryError
from registry.names import Ref, validate_name
from registry.schema import Alias, AliasHistory, Artifact, Model, ModelVersion, Tag, VersionArtifact, utcnow
from registry.store import ArtifactRef, add_event, artifact_ref, next_model_version

SCALARS = (bool, int, float, str)


@dataclass(frozen=True)
class VersionInfo:
    model: str
    version: int
    run_id: str | None
    created_at: str
    metrics: dict[str, Any]
    artifacts: dict[str, ArtifactRef]
    aliases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.model}:{self.version}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def version_metrics(roles: Mapping[str, Artifact], explicit: Mapping[str, Any] | None) -> dict[str, Any]:
    """`role.metric` for every scalar in each artifact's recorded metrics (nested keys joined by dots),
    overlaid with metrics given explicitly at registration."""
    metrics: dict[str, Any] = {}
    for role, artifact in sorted(roles.items()):
        recorded = (artifact.meta or {}).get("metrics")
        if isinstance(recorded, dict):
            _flatten(role, recorded, metrics)
    metrics.update({key: value for key, value in (explicit or {}).items() if isinstance(value, SCALARS)})
    return metrics


def _flatten(prefix: str, values: Mapping[str, Any], into: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, dict):
            _flatten(f"{prefix}.{key}", value, into)
        elif isinstance(value, SCALARS):
            into[f"{prefix}.{key}"] = value


def register_version(
    session: Session,
    name: str,
    roles: Mapping[str, Artifact],
    *,
    metrics: Mapping[str, Any] | None = None,
    tags: Iterable[str] = (),
    run_id: str | None = None,
    reason: str | None = None,
) -> ModelVersion:
    validate_name(name, "model name")
    if not roles:
        raise RegistryError(f"model {name}: a version needs at least one artifact")
    for role in roles:
        validate_name(role, "role")
    tags = [validate_name(tag, "tag") for tag in tags]
    model_id, number = next_model_version(session, name)
    version = ModelVersion(
        model_id=model_id, version=number, run_id=run_id, metrics=version_metrics(roles, metrics),
        created_at=utcnow(),
    )
    session.add(version)
    session.flush()
    session.add_all(
        VersionArtifact(model_version_id=version.id, role=role, artifact_id=artifact.id)
        for role, artifact in roles.items()
    )
    session.add_all(Tag(model_version_id=version.id, tag=tag, created_at=utcnow()) for tag in dict.fromkeys(tags))
    add_event(
        session, "registered", f"model {name}:{number}", model=name, version=number, reason=reason,
        evidence={role: f"{a.name}:{a.version} sha256:{a.sha256}" for role, a in sorted(roles.items())},
    )
    return version


def get_model(session: Session, name: str) -> Model:
    model = session.scalars(select(Model).where(Model.name == validate_name(name, "model name"))).first()
    if model is None:
        raise RegistryError(f"unknown model {name!r}")
    return model


def get_version(session: Session, ref: Ref) -> tuple[Model, ModelVersion]:
    model = get_model(session, ref.name)
    if ref.alias is not None:
        alias = session.get(Alias, (model.id, ref.alias))
        if alias is None:
            known = ", ".join(aliases_of(session, model)) or "none"
            raise RegistryError(f"unknown alias {ref}: model {model.name!r} has aliases: {known}")
        return model, session.get(ModelVersion, alias.model_version_id)
    number = model.latest_version if ref.version is None else ref.version
    version = session.scalars(
        select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == number)
    ).first()
    if version is None:
        raise RegistryError(f"unknown version {model.name}:{number} (latest is {model.latest_version})")
    return model, version


def aliases_of(session: Session, model: Model, version: ModelVersion | None = None) -> list[str]:
    query = select(Alias.alias).where(Alias.model_id == model.id)
    if version is not None:
        query = query.where(Alias.model_version_id == version.id)
    return sorted(session.scalars(query))


def role_artifacts(session: Session, version: ModelVersion) -> dict[str, Artifact]:
    return dict(linked_artifacts(
        session, VersionArtifact.role, VersionArtifact.artifact_id, VersionArtifact.model_version_id, version.id
    ))


def linked_artifacts(session: Session, role, artifact_id, owner_id, owner: int) -> list[tuple[str, Artifact]]:
    """(role, artifact) rows of a link table whose `owner_id` column is `owner`, by role: a version's artifacts
    (VersionArtifact) or an artifact's inputs (LineageEdge)."""
    return session.execute(
        select(role, Artifact).join(Artifact, Artifact.id == artifact_id).where(owner_id == owner).order_by(role)
    ).all()


def version_info(session: Session, model: Model, version: ModelVersion) -> VersionInfo:
    tags = session.scalars(select(Tag.tag).where(Tag.model_version_id == version.id).order_by(Tag.tag))
    return VersionInfo(
        model=model.name, version=version.version, run_id=version.run_id,
        created_at=version.created_at.isoformat(timespec="seconds"), metrics=dict(version.metrics or {}),
        artifacts={role: artifact_ref(a) for role, a in role_artifacts(session, version).items()},
        aliases=aliases_of(session, model, version), tags=list(tags),
    )


def list_versions(session: Session, model: Model) -> list[VersionInfo]:
    versions = session.scalars(
        select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.version)
    ).all()
    return [version_info(session, model, version) for version in versions]


def holder(session: Session, model: Model, alias: str) -> ModelVersion | None:
    row = session.get(Alias, (model.id, alias))
    return session.get(ModelVersion, row.model_version_id) if row else None


def set_alias(session: Session, model: Model, version: ModelVersion, alias: str) -> None:
    validate_name(alias, "alias")
    now = utcnow()
    row = session.get(Alias, (model.id, alias))
    if row is None:
        session.add(Alias(model_id=model.id, alias=alias, model_version_id=version.id, updated_at=now))
    else:
        row.model_version_id, row.updated_at = version.id, now
    session.add(AliasHistory(model_id=model.id, alias=alias, model_version_id=version.id, set_at=now))


def rollback_alias(session: Session, model: Model, alias: str) -> tuple[ModelVersion, ModelVersion]:
    """Step the alias back to the holder before the current one; returns (from, to)."""
    validate_name(alias, "alias")
    history = session.scalars(
        select(AliasHistory)
        .where(AliasHistory.model_id == model.id, AliasHistory.alias == alias, AliasHistory.rolled_back_at.is_(None))
        .order_by(AliasHistory.id.desc())
    ).all()
    if not history:
        raise RegistryError(f"unknown alias {model.name}@{alias}")
    current = history[0]
    previous = next((row for row in history[1:] if row.model_version_id != current.model_version_id), None)
    if previous is None:
        raise RegistryError(f"{model.name}@{alias} has no previous holder to roll back to")
    now = utcnow()
    # Every assignment after `previous` is stepped over, so a second rollback goes further back.
    for row in history:
        if row.id == previous.id:
            break
        row.rolled_back_at = now
    alias_row = session.get(Alias, (model.id, alias))
    alias_row.model_version_id, alias_row.updated_at = previous.model_version_id, now
    return session.get(ModelVersion, current.model_version_id), session.get(ModelVersion, previous.model_version_id)


def add_tags(session: Session, version: ModelVersion, tags: Iterable[str]) -> None:
    present = set(session.scalars(select(Tag.tag).where(Tag.model_version_id == version.id)))
    for tag in dict.fromkeys(validate_name(tag, "tag") for tag in tags):
        if tag not in present:
            session.add(Tag(model_version_id=version.id, tag=tag, created_at=utcnow()))


def list_models(session: Session) -> list[dict[str, Any]]:
    models = session.scalars(select(Model).order_by(Model.name)).all()
    result = []
    for model in models:
        holders = session.execute(
            select(Alias.alias, ModelVersion.version)
            .join(ModelVersion, ModelVersion.id == Alias.model_version_id)
            .where(Alias.model_id == model.id)
            .order_by(Alias.alias)
        ).all()
        result.append({
            "name": model.name, "latest_version": model.latest_version,
            "created_at": model.created_at.isoformat(timespec="seconds"),
            "aliases": {alias: number for alias, number in holders},
        })
    return result
