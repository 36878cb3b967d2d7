"""Migrations up and down on SQLite and PostgreSQL; the migrated schema is the ORM's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from api.db.migrate import current_revision, downgrade, head_revision, upgrade
from api.db.session import Database
from api.db.tables import Base
from wzcredit.cli import app as cli

TABLES = set(Base.metadata.tables)


def schema_differences(database: Database) -> list[object]:
    """What autogenerate would write to make the database match the models (``alembic
    check``): nothing, when the migrations and `api.db.tables` agree."""
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def log_is_append_only(database: Database) -> bool:
    """True when the query log refuses an UPDATE (the migration's trigger)."""
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO query_log (at, request_id, method, route, status, outcome) "
                "VALUES (CURRENT_TIMESTAMP, 'r-1', 'GET', '/v1/x', 200, '')"
            )
        )
    try:
        with database.engine.begin() as connection:
            connection.execute(text("UPDATE query_log SET status = 500"))
    except DBAPIError:
        return True
    return False


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    built = Database(database_url)
    yield built
    built.dispose()


def test_upgrade_downgrade_upgrade(database: Database) -> None:
    upgrade(database.engine)
    assert current_revision(database.engine) == head_revision()
    assert set(inspect(database.engine).get_table_names()) >= TABLES
    assert schema_differences(database) == []
    assert log_is_append_only(database)

    downgrade(database.engine)
    assert current_revision(database.engine) is None
    assert not TABLES & set(inspect(database.engine).get_table_names())

    upgrade(database.engine)  # and up again, from nothing
    assert current_revision(database.engine) == head_revision()
    assert set(inspect(database.engine).get_table_names()) >= TABLES
    assert schema_differences(database) == []
    assert log_is_append_only(database)  # the triggers came back with the tables


def test_db_commands_move_the_database(database: Database, database_url: str) -> None:
    runner = CliRunner()
    url = ["--database-url", database_url]

    up = runner.invoke(cli, ["db", "upgrade", *url])
    assert up.exit_code == 0, up.output
    current = runner.invoke(cli, ["db", "current", *url])
    assert current.stdout.startswith(f"{head_revision()} ")
    assert "up to date" in current.stdout
    assert set(inspect(database.engine).get_table_names()) >= TABLES

    down = runner.invoke(cli, ["db", "downgrade", "base", *url])
    assert down.exit_code == 0, down.output
    assert "base (empty)" in " ".join(down.output.split())  # however the console wraps
    assert runner.invoke(cli, ["db", "current", *url]).stdout.startswith("base ")
    assert not TABLES & set(inspect(database.engine).get_table_names())

    assert runner.invoke(cli, ["db", "upgrade", head_revision() or "head", *url]).exit_code == 0
    assert current_revision(database.engine) == head_revision()
