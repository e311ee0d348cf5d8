"""Fixtures of the connector tests: real databases from :mod:`tests.fixtures`."""

from tests.fixtures.mongo import mongo  # noqa: F401
from tests.fixtures.postgres import postgres  # noqa: F401
