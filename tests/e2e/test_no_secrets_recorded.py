"""The whole pipeline under `dvc repro` with passwords in `registry.url` and `tune.storage`: the password is in
no output, record, registry row or blob, nor in what the stages print (issue #18, item 1).

Only the spec holds it: params.yaml, and dvc.lock, where DVC copies the params a stage depends on (to keep a
password out of both, leave it out of the URL: libpq reads PGPASSWORD or ~/.pgpass). Every other file
under the checkout is read, the blob store included (.tuneforge/artifacts), and on PostgreSQL every row of
the registry's and the study's tables.

On SQLite (always): the registry cannot take a password, so only tune.storage carries one (the stage is off
and records it without connecting). On PostgreSQL (TUNEFORGE_TEST_PG_URL, from .ci/postgres.sh): the test
makes a throwaway role with a random password and runs the registry and a one-trial search on it.
"""

import json
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.helpers.project import dvc, git
from tuneforge.params.overrides import apply_to_params_file

pytestmark = pytest.mark.e2e
PG_URL = os.environ.get("TUNEFORGE_TEST_PG_URL")
# The spec as the user wrote it, and DVC's copy of its tracked params: the only places the password may be.
SPEC_FILES = {"params.yaml", "dvc.lock"}


def files_holding(root: Path, secret: str) -> list[str]:
    """Every file under `root` whose bytes contain `secret` (git's objects are compressed: the test commits
    nothing that holds it)."""
    return sorted(
        path.relative_to(root).as_posix() for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and secret.encode() in path.read_bytes()
    )


def tables_holding(url: str, schema: str, secret: str) -> tuple[list[str], list[str]]:
    """(the tables of `schema`, those with a row whose text holds `secret`)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names(schema=schema)
            return tables, [
                table for table in tables
                if connection.execute(
                    text(f'SELECT count(*) FROM "{schema}"."{table}" AS t WHERE strpos(row_to_json(t)::text, :s) > 0'),
                    {"s": secret},
                ).scalar()
            ]
    finally:
        engine.dispose()


@pytest.fixture
def secret_pg_urls(request):
    """PostgreSQL URLs with a random password: a role of its own, and two schemas it owns (the registry's and
    the study's: both keep an alembic_version table), dropped afterwards. (urls, schemas, password)."""
    if not PG_URL:
        pytest.skip("TUNEFORGE_TEST_PG_URL is not set (.ci/postgres.sh starts a server and prints it)")
    token = uuid.uuid4().hex[:12]
    role, password = f"tf_secret_{token}", f"pw{uuid.uuid4().hex}"
    schemas = [f"registry_{token}", f"study_{token}"]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if not connection.execute(text("SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user")).scalar():
            admin.dispose()
            pytest.skip("the role of TUNEFORGE_TEST_PG_URL cannot create roles (re-run .ci/postgres.sh)")
        connection.execute(text(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'"))
        connection.execute(text(f'GRANT "{role}" TO current_user'))
        for schema in schemas:
            connection.execute(text(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{role}"'))

    def drop():
        with admin.connect() as connection:
            for schema in schemas:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            connection.execute(text(f'DROP OWNED BY "{role}"'))
            connection.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()

    request.addfinalizer(drop)
    url = make_url(PG_URL).set(username=role, password=password)
    urls = [
        url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
        for schema in schemas
    ]
    return urls, schemas, password


def run_pipeline(clone: Path, assignments: list[str]) -> str:
    """The spec changed (not committed: git's history never holds the password), then `dvc repro`."""
    apply_to_params_file(clone / "params.yaml", assignments)
    return dvc(clone, "repro")


def assert_recorded_masked(clone: Path, secret: str, output: str) -> None:
    assert secret in (clone / "params.yaml").read_text()  # the spec holds it: the scan below can find it
    assert secret not in output, "a stage printed the password"
    leaked = [name for name in files_holding(clone, secret) if name not in SPEC_FILES]
    assert leaked == []
    tune_meta = json.loads((clone / "models/tune/meta.json").read_text())
    assert ":***@" in tune_meta["config"]["tune"]["storage"]
    assert (clone / ".tuneforge/artifacts").is_dir()  # the blob store was among the files read


def test_a_password_in_tune_storage_is_recorded_nowhere(fast_project_clone):
    clone = fast_project_clone
    secret = f"pw{uuid.uuid4().hex}"
    storage = f"postgresql+psycopg://trainer:{secret}@127.0.0.1:9/studies"
    output = run_pipeline(clone, [f"tune.storage={json.dumps(storage)}"])
    assert_recorded_masked(clone, secret, output)
    register_meta = json.loads((clone / "reports/register/meta.json").read_text())
    assert register_meta["config"]["registry"]["url"] == "sqlite:///.tuneforge/registry.db"


def test_passwords_in_registry_url_and_tune_storage_are_recorded_nowhere(fast_project_clone, secret_pg_urls):
    clone = fast_project_clone
    (url, study_url), schemas, secret = secret_pg_urls
    output = run_pipeline(clone, [
        f"registry.url={json.dumps(url)}", f"tune.storage={json.dumps(study_url)}", "tune.enabled=true",
        "tune.n_trials=1", "tune.budget={max_steps: 2, eval_steps: 2}",
    ])
    assert "Running stage 'register'" in output
    assert_recorded_masked(clone, secret, output)
    register_meta = json.loads((clone / "reports/register/meta.json").read_text())
    assert register_meta["config"]["registry"]["url"].startswith(f"postgresql+psycopg://{make_url(url).username}:***@")
    # The registry and the study live in the role's schemas: no row of either holds the password.
    for schema, expected in zip(schemas, ("artifacts", "trials"), strict=True):
        tables, holding = tables_holding(url, schema, secret)
        assert expected in tables and holding == []
    shown = git(clone, "status", "--porcelain")
    assert "params.yaml" in shown  # the spec change was never committed
