"""The registry database: Alembic migrations, refusing what is not a registry, unreachable servers,
the append-only event log, and SQLite's WAL / busy-timeout settings."""

import hashlib
import socket
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from registry import api
from registry.config import RegistryConfig
from registry.db import create_registry_engine, current_revision, head_revision, open_database, upgrade
from registry.errors import RegistryError
from registry.schema import Base
from tests.helpers.registry import write
from tuneforge.base.outputs import Produced


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_migrated_schema_matches_the_orm(registry_config):
    engine = open_database(registry_config.url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []
    assert head_revision() == "0002"


def test_upgrade_from_the_first_revision_keeps_existing_rows(registry_config):
    engine = create_registry_engine(registry_config.url)
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO runs (id, entry_point, started_at, status) VALUES ('old-run', 'cli', :t, 'succeeded')"
        ), {"t": "2025-01-01 00:00:00"})
        connection.execute(text("INSERT INTO artifact_names (name, latest_version) VALUES ('train.model', 1)"))
        connection.execute(text(
            "INSERT INTO artifacts (name, version, kind, sha256, size, is_dir, uri, path, stage, run_id, metadata, "
            "created_at) VALUES ('train.model', 1, 'model', :sha, 3, false, 'file:///x', 'models/m.bin', 'train', "
            "'old-run', '{}', :t)"
        ), {"sha": "a" * 64, "t": "2025-01-01 00:00:00"})
        connection.execute(text(
            "INSERT INTO models (name, latest_version, created_at) VALUES ('intent', 1, :t)"
        ), {"t": "2025-01-01 00:00:00"})
        connection.execute(text(
            "INSERT INTO model_versions (model_id, version, run_id, metrics, created_at) "
            "SELECT id, 1, 'old-run', '{\"metrics.f1_macro\": 0.9}', :t FROM models WHERE name = 'intent'"
        ), {"t": "2025-01-01 00:00:00"})
        connection.execute(text(
            "INSERT INTO model_version_artifacts (model_version_id, role, artifact_id) "
            "SELECT model_versions.id, 'student', artifacts.id FROM model_versions, artifacts"
        ))
        tables = set(connection.dialect.get_table_names(connection))
    engine.dispose()
    assert "tags" not in tables and "artifacts" in tables

    shown = api.show("intent:1", config=registry_config)  # opening upgrades to head in place
    assert shown["metrics"] == {"metrics.f1_macro": 0.9}
    assert shown["artifacts"]["student"]["sha256"] == "a" * 64
    assert shown["run"]["id"] == "old-run"
    assert api.tag("intent:1", ["migrated"], config=registry_config).tags == ["migrated"]
    engine = create_registry_engine(registry_config.url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_events_are_append_only_in_the_database(registry_config):
    write(Path("m.bin"), "x")
    api.record_stage(Produced("train", {"m": Path("m.bin")}, {}), config=registry_config)
    engine = open_database(registry_config.url)
    for statement in ("UPDATE events SET reason = 'rewritten'", "DELETE FROM events"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM events")).scalar() == 1
    engine.dispose()


def test_random_bytes_are_not_a_registry_and_stay_untouched(tmp_path):
    path = write(tmp_path / "registry.db", bytes(range(256)) * 64)
    before = _sha(path)
    with pytest.raises(RegistryError) as raised:
        open_database(f"sqlite:///{path}")
    assert str(raised.value) == f"registry database {path} is not a tuneforge registry (not a SQLite database)"
    assert _sha(path) == before


def test_foreign_sqlite_database_is_refused_and_stays_untouched(tmp_path):
    path = tmp_path / "other.db"
    foreign = create_engine(f"sqlite:///{path}")
    with foreign.begin() as connection:
        for table in ("customers", "orders", "invoices", "payments"):
            connection.execute(text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)"))
    foreign.dispose()
    before = _sha(path)
    with pytest.raises(RegistryError) as raised:
        open_database(f"sqlite:///{path}")
    assert str(raised.value) == (
        f"registry database {path} is not a tuneforge registry "
        "(it holds other tables: customers, invoices, orders, ...)"
    )
    assert _sha(path) == before
    assert not Path(f"{path}-wal").exists()


def test_registry_from_a_newer_tuneforge_is_refused(registry_config):
    engine = open_database(registry_config.url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(RegistryError, match="schema revision 0099; this tuneforge knows up to 0002"):
        open_database(registry_config.url)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_database_fails_fast_with_one_line():
    url = f"postgresql+psycopg://someone:s3cret@127.0.0.1:{_closed_port()}/registry"
    started = time.monotonic()
    with pytest.raises(RegistryError) as raised:
        api.models(config=RegistryConfig(url=url, connect_timeout_s=2))
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert message.startswith("cannot reach registry database postgresql+psycopg://someone:***@127.0.0.1:")
    assert "s3cret" not in message and "\n" not in message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "registry url 'not a url' is not a valid SQLAlchemy URL"),
        ("nosuchdb://x/y", "registry url nosuchdb://x/y: no driver"),
        ("sqlite:////proc/forbidden/registry.db", "registry database /proc/forbidden/registry.db"),
    ],
)
def test_unusable_urls_are_one_line_errors(url, message):
    with pytest.raises(RegistryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_database(url)


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    engine = open_database(f"sqlite:///{tmp_path / 'r.db'}", busy_timeout_s=7.5)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cursor.execute("PRAGMA busy_timeout").fetchone()[0] == 7500
        assert cursor.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        raw.close()
        engine.dispose()
