"""Record schemas (schemas/*.avsc) and the codec every producer and consumer uses.

- `encode(record, fmt="avro")`: bytes and headers, Avro or JSON.
- `decode_command`, `decode_result`, `decode_input`, `decode_event`,
  `decode_task`: one kind of record, from either
  encoding (by header, else sniffed).
- `RecordError`: undecodable, or fails its schema.

One .avsc file per record type, in namespace migration.v1 (the contract's
major version: compatible changes keep it). In Avro a record's type is its
schema's name, and the free-form `spec.mapping` and `spec.rules` travel as JSON
text in the fields `mapping_json` and `rules_json` (see schemas.shapes) until
a later schema version types them. Old writer schemas live in schemas/history/.
"""

from schemas.codec import (
    AVRO_CONTENT_TYPE,
    CONTENT_TYPE_HEADER,
    JSON_CONTENT_TYPE,
    RECORD_TYPE_HEADER,
    Format,
    Headers,
    decode_command,
    decode_event,
    decode_input,
    decode_result,
    decode_task,
    encode,
)
from schemas.exceptions import RecordError
from schemas.records import Record

__all__ = [
    "AVRO_CONTENT_TYPE",
    "CONTENT_TYPE_HEADER",
    "JSON_CONTENT_TYPE",
    "RECORD_TYPE_HEADER",
    "Format",
    "Headers",
    "Record",
    "RecordError",
    "decode_command",
    "decode_event",
    "decode_input",
    "decode_result",
    "decode_task",
    "encode",
]
