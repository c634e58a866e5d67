"""Initial schema: runs, artifacts with manifests and lineage, models, versions, aliases, events.

Revision ID: 0001
Revises:
Create Date: 2025-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NAME = sa.String(64)
SHA256 = sa.String(64)
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", NAME, primary_key=True),
        sa.Column("params_hash", SHA256, nullable=True),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("dvc_lock_hash", SHA256, nullable=True),
        sa.Column("entry_point", sa.String(16), nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("ended_at", WHEN, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_table(
        "artifact_names",
        sa.Column("name", NAME, primary_key=True),
        sa.Column("latest_version", sa.Integer, nullable=False),
    )
    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", NAME, sa.ForeignKey("artifact_names.name"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("sha256", SHA256, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("is_dir", sa.Boolean, nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("stage", NAME, nullable=True),
        sa.Column("run_id", NAME, sa.ForeignKey("runs.id"), nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_artifacts_name_version"),
    )
    op.create_index("ix_artifacts_sha256", "artifacts", ["sha256"])
    op.create_table(
        "artifact_files",
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), primary_key=True),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("sha256", SHA256, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_artifact_files_sha256", "artifact_files", ["sha256"])
    op.create_table(
        "lineage",
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), primary_key=True),
        sa.Column("input_artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", NAME, nullable=False, unique=True),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("run_id", NAME, sa.ForeignKey("runs.id"), nullable=True),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
    )
    op.create_table(
        "model_version_artifacts",
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), primary_key=True),
        sa.Column("role", NAME, primary_key=True),
        sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False),
    )
    op.create_table(
        "aliases",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
        sa.Column("alias", NAME, primary_key=True),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_table(
        "alias_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("alias", NAME, nullable=False),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("set_at", WHEN, nullable=False),
        sa.Column("rolled_back_at", WHEN, nullable=True),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(160), nullable=False),
        sa.Column("model", NAME, nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("alias", NAME, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("evidence", sa.JSON, nullable=True),
    )


def downgrade() -> None:
    for table in (
        "events", "alias_history", "aliases", "model_version_artifacts", "model_versions", "models",
        "lineage", "artifact_files", "artifacts", "artifact_names", "runs",
    ):
        op.drop_table(table)
