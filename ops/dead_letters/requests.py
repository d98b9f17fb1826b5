"""What an operator asks of a redrive or a purge, validated once: the CLI
builds these from its options, the API from its JSON body (the field names
are the body's: `all`, `offsets`, `before`, ...), and the API documents them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ops.dead_letters.plan import Selection, parse_positions
from ops.dead_letters.purge import parse_before
from ops.errors import BadSelection


class RedriveRequest(BaseModel):
    """Every dead letter (`all`) or those at `offsets` (`p:o`), at most `limit`,
    at most `rate` records/s; a `dry_run` only previews."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    everything: bool = Field(default=False, alias="all")
    offsets: list[str] = Field(default_factory=list, max_length=10_000)
    dry_run: bool = False
    limit: int | None = Field(default=None, ge=1)
    rate: float | None = Field(default=None, gt=0)
    max_attempts: int | None = Field(default=None, ge=1)

    def selection(self) -> Selection:
        """The records asked for; BadSelection when it is neither or both."""
        return Selection(self.everything, parse_positions(self.offsets), self.limit)

    def attempts(self, default: int) -> int:
        """Records that failed this often are refused."""
        return self.max_attempts or default


class PurgeRequest(BaseModel):
    """Every record read now (`all`) or each partition below an offset
    (`before`: `p:o`); nothing is deleted without `confirm`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    everything: bool = Field(default=False, alias="all")
    before: list[str] = Field(default_factory=list)
    confirm: bool = False

    def cut(self) -> dict[int, int] | None:
        """{partition: delete below this offset}, or None for every record read."""
        if self.everything == bool(self.before):
            raise BadSelection("choose either every record (--all) or some (--before p:o)")
        return None if self.everything else parse_before(self.before)
