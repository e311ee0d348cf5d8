"""Fixtures of the connector tests: real databases from :mod:`tests.fixtures`, and for the
end-to-end tests a broker subprocess with connector processes (:mod:`tests.connectors.e2e`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BrokerProcess
from tests.connectors.e2e import Connectors, MongoTarget, PostgresTarget, Target
from tests.fixtures.mongo import MongoServer, mongo  # noqa: F401
from tests.fixtures.postgres import PostgresCluster, postgres  # noqa: F401


@pytest.fixture
def connectors(tmp_path: Path, broker_process: BrokerProcess) -> Iterator[Connectors]:
    """Connector processes against this test's broker subprocess (SIGKILLed at the end)."""
    directory = tmp_path / "connectors"
    directory.mkdir()
    started = Connectors(directory, broker_process.address)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def pg_target(postgres: PostgresCluster) -> PostgresTarget:  # noqa: F811
    """A fresh PostgreSQL database."""
    return PostgresTarget(postgres.fresh_database("e2e"))


@pytest.fixture
def mongo_target(mongo: MongoServer) -> MongoTarget:  # noqa: F811
    """A fresh MongoDB database."""
    return MongoTarget(mongo.client, mongo.uri, mongo.fresh_database())


@pytest.fixture(params=["postgres", "mongo"])
def target(request: pytest.FixtureRequest) -> Target:
    """Each sink's database in turn: one test body for both connectors."""
    fixture = "pg_target" if request.param == "postgres" else "mongo_target"
    found: Target = request.getfixturevalue(fixture)
    return found
