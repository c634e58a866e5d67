"""The registry tests' fixture, loaded as a plugin by tests/conftest.py.

`registry_config` runs a test on SQLite always, and on PostgreSQL when TUNEFORGE_TEST_PG_URL is set
(.ci/postgres.sh prints it): each PostgreSQL test gets a schema of its own, dropped afterwards.
"""

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from registry.config import RegistryConfig

PG_URL = os.environ.get("TUNEFORGE_TEST_PG_URL")
BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason="TUNEFORGE_TEST_PG_URL is not set")),
]


def pg_schema_url(schema: str) -> str:
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def database_url(backend: str, tmp_path: Path, request) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop():
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    request.addfinalizer(drop)
    return pg_schema_url(schema)


@pytest.fixture(params=BACKENDS)
def registry_config(request, tmp_path, monkeypatch) -> RegistryConfig:
    """A fresh registry (database + blob store + cache) with the test running inside tmp_path."""
    monkeypatch.chdir(tmp_path)
    for name in ("TUNEFORGE_RUN_ID", "TUNEFORGE_ENTRYPOINT", "DVC_STAGE", "DVC_ROOT", "PREFECT__FLOW_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TUNEFORGE_ACTOR", "tester")
    return RegistryConfig(
        url=database_url(request.param, tmp_path, request),
        artifacts=str(tmp_path / "store"),
        cache=str(tmp_path / "cache"),
        busy_timeout_s=60.0,
    )
