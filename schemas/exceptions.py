"""Errors of the record layer, in the product's one tree (domain.errors).

RecordError            a record cannot be encoded or decoded, or fails its
                       schema; never retriable: a consumed record goes to the DLQ.
                       Dead letters name it by this module's path.
"""

from __future__ import annotations

from domain.errors import MigratorError


class RecordError(MigratorError):
    pass
