"""The storage contract (logsvc/storage/base.py), run against every Store implementation (the
``store`` fixture in conftest.py): a closed store."""

from __future__ import annotations

import pytest

from logsvc.storage.base import Store
from logsvc.topic_config import TopicConfig
from logsvc_client.errors import Unavailable
from tests.storage.batches import make_batch


def test_calls_after_close_raise_unavailable(store: Store) -> None:
    # Given a closed store
    store.create_topic("orders", 1, TopicConfig())
    store.close()
    # When it is used
    # Then every call says the store is unavailable
    with pytest.raises(Unavailable):
        store.read("orders", 0, 0, 100)
    with pytest.raises(Unavailable):
        store.append("orders", [(0, make_batch())])
    with pytest.raises(Unavailable):
        store.list_topics()
