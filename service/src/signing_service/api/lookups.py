"""The sign path's reads, each one plain SQL query: the client with its API key, and an identity
with whether the client's key may use it and the identities' version (identities/key_cache.py).

Every sign request makes them, and building a query with the ORM costs more than running it
(bench/README.md, "Where a sign request's time goes"). The rows become model instances with only
the columns read (the others deferred: loaded if ever touched), so the code after them is the
same as with the ORM's.
"""

from __future__ import annotations

import datetime

from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Model
from django.db.models.base import DEFERRED

from signing_service.access.models import ApiKey, Client
from signing_service.identities.models import Identity, IdentityVersion

CLIENT_FIELDS = (
    "id", "hostname", "address", "token_hash", "is_active", "is_approved", "last_seen",
    "api_key_id",
)  # fmt: skip
API_KEY_FIELDS = ("id", "name", "is_active")
IDENTITY_FIELDS = (
    "id", "common_name", "sha1", "sha256", "key_type", "not_before", "not_after", "is_active",
    "token_label", "token_key_id", "wrapped_data_key", "encrypted_private_key",
)  # fmt: skip


def columns(alias: str, names: tuple[str, ...]) -> str:
    return ", ".join(f"{alias}.{name}" for name in names)


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


CLIENT_QUERY = f"""
SELECT {columns("c", CLIENT_FIELDS)}, {columns("k", API_KEY_FIELDS)}
FROM {table(Client)} c JOIN {table(ApiKey)} k ON k.id = c.api_key_id
WHERE c.token_id = %s
"""  # noqa: S608 - the names come from the models; the values are parameters
IDENTITY_QUERY = f"""
SELECT {columns("i", IDENTITY_FIELDS)},
       (i.authorize_all_keys OR EXISTS (
           SELECT 1 FROM {table(Identity.authorized_keys.through)} a
           WHERE a.identity_id = i.id AND a.apikey_id = %s
       )),
       (SELECT v.number FROM {table(IdentityVersion)} v WHERE v.id = 1)
FROM {table(Identity)} i WHERE i.{{field}} = %s
"""  # noqa: S608 - the names come from the models; the values are parameters


def client_with_key(token_id: str) -> Client | None:
    """The client whose token has this id, its ``api_key`` loaded; None if there is none."""
    row = fetch_one(CLIENT_QUERY, [token_id])
    if row is None:
        return None
    client = instance(Client, CLIENT_FIELDS, row[: len(CLIENT_FIELDS)])
    client.api_key = instance(ApiKey, API_KEY_FIELDS, row[len(CLIENT_FIELDS) :])
    return client


def identity_for(fingerprint: str, api_key: ApiKey) -> Identity | None:
    """The identity with this (normalised) SHA-1 or SHA-256 fingerprint, or None. It carries
    ``authorized`` (may ``api_key`` use it) and ``identities_version`` (None: unknown)."""
    field = "sha1" if len(fingerprint) == 40 else "sha256"
    row = fetch_one(IDENTITY_QUERY.format(field=field), [api_key.pk, fingerprint])
    if row is None:
        return None
    identity = instance(Identity, IDENTITY_FIELDS, row[: len(IDENTITY_FIELDS)])
    authorized, identity.identities_version = row[len(IDENTITY_FIELDS) :]
    identity.authorized = bool(authorized)
    return identity


def fetch_one(sql: str, params: list) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def instance(model: type[Model], names: tuple[str, ...], values: tuple) -> Model:
    """A model instance of the columns read, as the ORM would load it: SQLite gives times
    without their zone (UTC, as Django writes them) and binary columns as ``bytes``."""
    read = dict(zip(names, values, strict=True))
    for name, value in read.items():
        if isinstance(value, datetime.datetime) and value.tzinfo is None:
            read[name] = value.replace(tzinfo=datetime.UTC)
        elif isinstance(value, memoryview):
            read[name] = bytes(value)
    ordered = [read.get(field.attname, DEFERRED) for field in model._meta.concrete_fields]
    return model.from_db(DEFAULT_DB_ALIAS, None, ordered)
