"""Fixtures of the centre's tests: one PostgreSQL cluster per session (``initdb`` costs
seconds), a fresh database per test (made and migrated in milliseconds), and a mosquitto per
test. Each test's database is dumped into its ``tmp_path`` at the end, so the suite's privacy
scan (``tests/test_privacy.py``) reads every row the centre stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.centre.postgres import Postgres, env_has_postgres
from tests.support.mosquitto import Broker, env_has_mosquitto

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Postgres]:
    if not env_has_postgres():
        pytest.skip("PostgreSQL (Debian's postgresql) not installed")
    server = Postgres().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def centre_db(pg_server: Postgres, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database; yields its DSN."""
    import psycopg

    from gated.centre.schema import migrate

    name = pg_server.create_db()
    dsn = pg_server.dsn(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn, timezone="Asia/Shanghai")
    yield dsn
    pg_server.dump(name, tmp_path / "centre-db.sql")


@pytest.fixture
def db(centre_db: str) -> Iterator[Any]:
    """An autocommit psycopg connection to the test's database."""
    import psycopg

    with psycopg.connect(centre_db, autocommit=True) as conn:
        yield conn


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if not env_has_mosquitto():
        pytest.skip("mosquitto not installed")
    b = Broker(tmp_path / "broker", users={"centre": "centre-pw", "east-gate": "booth-pw",
                                           "west-gate": "booth-pw", "rogue": "booth-pw"},
               denied_event="gate.inputs")
    b.start()
    try:
        yield b
    finally:
        b.stop()
