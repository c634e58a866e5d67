"""The registry's tables as SQLAlchemy 2 ORM classes.

The migrations in registry/migrations create these tables; tests/registry/test_registry_db.py checks that the
migrated schema and these classes agree, so a change here needs a new migration revision.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAME = String(64)
SHA256 = String(64)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Run(Base):
    """One pipeline execution (or one stage run by hand): what produced a set of artifacts."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(NAME, primary_key=True)
    params_hash: Mapped[str | None] = mapped_column(SHA256)
    git_commit: Mapped[str | None] = mapped_column(String(64))
    dvc_lock_hash: Mapped[str | None] = mapped_column(SHA256)
    entry_point: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))


class ArtifactName(Base):
    """Per-name version counter: an atomic upsert-increment hands out gapless versions under concurrency."""

    __tablename__ = "artifact_names"
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    latest_version: Mapped[int] = mapped_column(Integer)


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_artifacts_name_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(NAME, ForeignKey("artifact_names.name"))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(SHA256, index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    is_dir: Mapped[bool]
    uri: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    stage: Mapped[str | None] = mapped_column(NAME)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"))
    # "metadata" is reserved on ORM classes; the column keeps the plain name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ArtifactFile(Base):
    """The manifest of a directory artifact: one row per file, each file stored as its own blob."""

    __tablename__ = "artifact_files"
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), primary_key=True)
    path: Mapped[str] = mapped_column(Text, primary_key=True)
    sha256: Mapped[str] = mapped_column(SHA256, index=True)
    size: Mapped[int] = mapped_column(BigInteger)


class LineageEdge(Base):
    """artifact <- input artifact; `role` is the stage's name for that input (and the file inside a dir)."""

    __tablename__ = "lineage"
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), primary_key=True)
    input_artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), primary_key=True)
    role: Mapped[str] = mapped_column(Text)


class Model(Base):
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(NAME, unique=True)
    latest_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VersionArtifact(Base):
    """The artifacts a model version groups, by role (teacher, student, onnx_int8, metrics, test_split...)."""

    __tablename__ = "model_version_artifacts"
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    role: Mapped[str] = mapped_column(NAME, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"))


class Alias(Base):
    """The current holder of an alias; alias_history keeps every assignment so rollback can step back."""

    __tablename__ = "aliases"
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(NAME, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AliasHistory(Base):
    __tablename__ = "alias_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    alias: Mapped[str] = mapped_column(NAME)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set when a rollback stepped back past this assignment; the holder is the latest row without it.
    rolled_back_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Event(Base):
    """Append-only audit log (the database refuses UPDATE and DELETE on it since revision 0002)."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(160))
    model: Mapped[str | None] = mapped_column(NAME)
    version: Mapped[int | None] = mapped_column(Integer)
    alias: Mapped[str | None] = mapped_column(NAME)
    reason: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Tag(Base):
    """Free labels on a model version (revision 0002)."""

    __tablename__ = "tags"
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), primary_key=True)
    tag: Mapped[str] = mapped_column(NAME, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
