"""Dead letters, operated: list, show, redrive (exactly once) and purge.

service   the use cases, one function each, as the CLI and the API call them
listing   the list kept per topic while its watermarks stand (a long-running API)
requests  what a redrive or a purge is asked to do, validated once
letters   read a dead-letter topic; one record with its error headers
plan      which records a redrive sends back, skips or refuses (pure)
ledger    the audit log that makes redrive idempotent by position
redrive   the transactional redrive run
purge     delete records below an offset (Admin DeleteRecords)
"""

from ops.dead_letters.letters import DeadLetterRecord, dlq_topic, read_letter, read_letters
from ops.dead_letters.plan import Plan, Selection, parse_positions
from ops.dead_letters.purge import PurgePlan, parse_before, plan_purge, purge
from ops.dead_letters.redrive import Redrive, RedriveResult, plan_redrive
from ops.errors import BadSelection, NoSuchRecord, NoSuchTopic, OperatorError

__all__ = [
    "BadSelection",
    "DeadLetterRecord",
    "NoSuchRecord",
    "NoSuchTopic",
    "OperatorError",
    "Plan",
    "PurgePlan",
    "Redrive",
    "RedriveResult",
    "Selection",
    "dlq_topic",
    "parse_before",
    "parse_positions",
    "plan_purge",
    "plan_redrive",
    "purge",
    "read_letter",
    "read_letters",
]
