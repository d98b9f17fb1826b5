"""One dead letter for people: its error headers and its original record,
decoded with the decoder of the topic it came from."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from config import KafkaNames
from ops.dead_letters.letters import DeadLetterRecord, decoded_original
from schemas import decode_command, decode_event, decode_result, decode_task


def describe(letter: DeadLetterRecord, names: KafkaNames) -> dict[str, Any]:
    decoders = {
        names.commands: decode_command,
        names.phase_results: decode_result,
        names.events: decode_event,
        names.phase_tasks: decode_task,
    }
    decode = decoders.get(letter.original_topic or "")

    def decoded(value: bytes | None, headers: Any) -> Any:
        if decode is None:
            raise ValueError(f"no decoder for topic {letter.original_topic!r}")
        record = decode(value, headers)
        return {**asdict(record), "type": record.type}

    return {**letter.summary(), **decoded_original(letter, decoded)}
