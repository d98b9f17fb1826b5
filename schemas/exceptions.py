"""Errors of the record layer.

RecordError            a record cannot be encoded or decoded, or fails its
                       schema; never retriable: a consumed record goes to the DLQ.
"""

from __future__ import annotations


class RecordError(Exception):
    retriable = False
