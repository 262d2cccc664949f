"""Alembic's entry point: runs the revisions on the connection bot.adapters.database.migrate hands
it."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from bot.adapters.database.schema import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,  # what `modbot db revision` compares the database with
        # SQLite alters a table by copying it; batch mode writes those steps for us.
        render_as_batch=connection.dialect.name == "sqlite",
        # bot.adapters.database.migrate opens the transaction (BEGIN IMMEDIATE on SQLite) and
        # commits it once
        # every revision has run, so a failing revision leaves the schema as it was.
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise SystemExit("modbot migrations run through `modbot db upgrade` (or `modbot db revision`)")
run(_connection)
