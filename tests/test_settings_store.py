"""The registry's documents (settings_store) read the same whichever way they are read: by their
own statement, or brought along by the authorization read as one JSON object (all_as_one). On
the backend under test."""

from __future__ import annotations

from sqlalchemy import select

from ecr_emulator.core import access, settings_store
from ecr_emulator.core.naming import Scope
from ecr_emulator.storage.prepared import Prepared

SCOPE = Scope("123456789012", "us-east-1")
DOCUMENTS = {
    "registry_policy": '{"Version": "2012-10-17", "Statement": []}',
    "scanning": {"scanType": "BASIC", "rules": [{"scanFrequency": "SCAN_ON_PUSH", "filters": []}]},
    "replication": {"rules": []},
    "count": 3,
    "flag": False,
    'a name with "quotes" and ünïcode': "v",
}


def _read_ahead(services):  # type: ignore[no-untyped-def]
    """The documents as the authorization read brings them."""
    with services.unit(SCOPE) as ctx:
        access.permits(ctx, access.Need("ecr:DescribeRepositories", None), access.Origin())
        return {name: settings_store.get(ctx, name) for name in DOCUMENTS}


def test_documents_brought_by_the_authorization_read_are_those_stored(services):
    with services.unit(SCOPE) as ctx:  # none yet
        whole = Prepared(lambda dialect: select(settings_store.all_as_one(dialect)))
        assert whole.scalar(ctx.session, {"account": SCOPE.account_id, "region": SCOPE.region}) in (None, {})
    assert _read_ahead(services) == dict.fromkeys(DOCUMENTS)
    with services.unit(SCOPE, write=True) as ctx:
        for name, value in DOCUMENTS.items():
            settings_store.put(ctx, name, value)
    with services.unit(SCOPE) as ctx:  # read by their own statement
        own = {name: settings_store.get(ctx, name) for name in DOCUMENTS}
    assert own == DOCUMENTS
    assert _read_ahead(services) == DOCUMENTS
    with services.unit(Scope(SCOPE.account_id, "eu-west-1")) as ctx:  # another registry's are apart
        access.permits(ctx, access.Need("ecr:DescribeRepositories", None), access.Origin())
        assert settings_store.get(ctx, "count") is None
