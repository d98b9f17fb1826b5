"""Record schemas and the codec every producer and consumer uses."""

from schemas.codec import (
    CONTENT_TYPE_HEADER,
    JSON_CONTENT_TYPE,
    decode_command,
    decode_event,
    encode,
)
from schemas.exceptions import RecordError

__all__ = [
    "CONTENT_TYPE_HEADER",
    "JSON_CONTENT_TYPE",
    "RecordError",
    "decode_command",
    "decode_event",
    "encode",
]
