"""The storage package's exceptions, in one place.

    StorageError
    ├── DecryptError   a stored value could not be decrypted with any configured key
    ├── SchemaError    the database schema cannot be used by this code (str() is one line for the operator)
    ├── EvidenceError  (also a ValueError) a reference the evidence store does not hold, or a file whose
    │                  bytes do not match their hash
    └── LostBeforeWork a PostgreSQL connection found lost at BEGIN, before any of the work ran (storage.db
                       runs the work on a new connection)

storage.crypto, storage.schema, storage.evidence and storage.pg import them from here (and still export them under their
old names).
"""

from __future__ import annotations


class StorageError(Exception):
    """Something stored, or the store itself, cannot be used as this code needs."""


class DecryptError(StorageError):
    """A stored value could not be decrypted with any configured key."""


class SchemaError(StorageError):
    """The database schema cannot be used by this code; str() is one line for the operator."""


class EvidenceError(StorageError, ValueError):
    """A reference the evidence store does not hold, or a file whose bytes do not match their hash."""


class LostBeforeWork(StorageError):
    """The connection was found lost at BEGIN, before any of the work ran (storage.pg.begin)."""
