"""Secrets at rest: encrypted with Fernet (AES-128-CBC and HMAC-SHA256, from ``cryptography``) under
the keys of ``settings.TRIPOD_ENCRYPTION_KEYS``, newest first.

Some secrets cannot be hashed: Tripod needs them back (an HMAC key verifies a webhook's signature, a
gateway's key signs requests). They are stored encrypted instead, through the model fields below,
so that a copy of the database (a backup, a replica, a leaked dump) does not hold them.

Rotation (``MultiFernet``): the first key encrypts, every key decrypts. Put a new key first, run
``manage.py encryption_rotate`` (each stored value is encrypted again under the new key), then drop
the old key.
"""

import json
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any, cast

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models.lookups import Lookup
from django.dispatch import Signal

__all__ = [
    "EncryptedJSONField",
    "EncryptedTextField",
    "InvalidToken",
    "decrypt",
    "encrypt",
    "encrypted_columns",
    "rotate",
    "secrets_rotate",
]


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _keys() -> MultiFernet:
    return _fernet(tuple(settings.TRIPOD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    """A Fernet token (url-safe base64 text, ``gAAAAA…``) of ``plaintext`` under the newest key."""
    return _keys().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The plaintext of a token made under any of the configured keys; ``InvalidToken`` otherwise
    (tampered, or made under a key that is no longer configured)."""
    return _keys().decrypt(token.encode("ascii")).decode()


def rotate(token: str) -> str:
    """The same plaintext, encrypted again under the newest key."""
    return _keys().rotate(token.encode("ascii")).decode("ascii")


class EncryptedTextField(models.TextField):
    """A secret string (a gateway key, an outbound webhook secret), encrypted at rest: the column
    holds a Fernet token, the model attribute the plaintext.

    Encryption is randomised, so two rows with the same secret store different tokens: the column
    can be neither searched nor indexed (only ``isnull`` lookups are allowed). A subclass stores
    another kind of value by converting it to and from text (``to_plaintext``, ``from_plaintext``)."""

    # What django-stubs' mypy plugin types the model attribute as (set, read).
    _pyi_private_set_type: str
    _pyi_private_get_type: str

    def to_plaintext(self, value: Any) -> str:
        return str(value)

    def from_plaintext(self, text: str) -> Any:
        return text

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return self.from_plaintext(decrypt(value))

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return encrypt(self.to_plaintext(value))

    def get_lookup(self, lookup_name: str) -> "type[Lookup[Any]] | None":
        if lookup_name != "isnull":
            return None  # Django then raises FieldError: "Unsupported lookup"
        return super().get_lookup(lookup_name)


class EncryptedJSONField(EncryptedTextField):
    """A JSON value (e.g. a list of secrets), encrypted at rest as one token."""

    # What django-stubs' mypy plugin types the model attribute as (set, read), as for JSONField.
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def to_plaintext(self, value: Any) -> str:
        return json.dumps(value, separators=(",", ":"))

    def from_plaintext(self, text: str) -> Any:
        return json.loads(text)

    def value_to_string(self, obj: models.Model) -> Any:
        # As JSONField: serializers (dumpdata, loaddata) carry the value itself, not its repr.
        return self.value_from_object(obj)


def encrypted_columns() -> Iterator[tuple[type[models.Model], EncryptedTextField]]:
    """Every encrypted field of every installed model."""
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                yield model, field


# Sent by ``rotate_all`` after the encrypted columns: receivers re-encrypt the secrets that live
# inside other structures (a library's JSON data) and return ``{name: count}``.
secrets_rotate = Signal()


def rotate_all(*, batch_size: int = 500) -> dict[str, int]:
    """Encrypt every stored value again under the newest key (``manage.py encryption_rotate``).
    Works on the tokens in SQL, a batch of rows at a time in primary-key order, so that no model
    code runs and no plaintext is kept. Returns the number of values per ``table.column``."""
    quote = connection.ops.quote_name
    done: dict[str, int] = {}
    for model, field in encrypted_columns():
        pk_field = model._meta.pk
        # concrete fields and primary keys have columns
        assert pk_field is not None
        assert pk_field.column
        assert field.column
        table, column, pk = quote(model._meta.db_table), quote(field.column), quote(pk_field.column)
        name = "%s.%s" % (model._meta.db_table, field.column)
        done[name] = 0
        first = "SELECT %s, %s FROM %s WHERE %s IS NOT NULL ORDER BY %s LIMIT %%s" % (pk, column, table, column, pk)
        after = "SELECT %s, %s FROM %s WHERE %s IS NOT NULL AND %s > %%s ORDER BY %s LIMIT %%s" % (
            pk,
            column,
            table,
            column,
            pk,
            pk,
        )
        update = "UPDATE %s SET %s = %%s WHERE %s = %%s" % (table, column, pk)
        last: Any = None
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                if last is None:
                    cursor.execute(first, [batch_size])
                else:
                    cursor.execute(after, [last, batch_size])
                rows: Sequence[tuple[Any, str]] = cursor.fetchall()
                if not rows:
                    break
                cursor.executemany(update, [(rotate(token), key) for key, token in rows])
            done[name] += len(rows)
            last = rows[-1][0]
    for _receiver, counts in secrets_rotate.send(sender=rotate_all):
        done.update(cast(dict[str, int], counts))
    return done
