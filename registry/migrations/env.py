"""Alembic environment: migrations run on the connection registry.db hands over (inside its lock).

For writing a new revision by hand: `alembic -c registry/migrations/alembic.ini -x url=sqlite:///x.db
revision --autogenerate -m "..."` compares a database at head with registry/schema.py, and
`... check` says whether they agree.
"""

from alembic import context
from sqlalchemy import create_engine

from registry.schema import Base

config = context.config
connection = config.attributes.get("connection")

if connection is not None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("pass the database with -x url=...")
    with create_engine(url).begin() as own_connection:
        context.configure(connection=own_connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
