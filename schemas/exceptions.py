"""Errors of the record layer.

RecordError            a record cannot be decoded or fails its schema;
                       never retriable: the record goes to the DLQ.
"""

from __future__ import annotations


class RecordError(Exception):
    retriable = False
