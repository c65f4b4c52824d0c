"""The ``retention:`` section: how long each kind of history is kept, and when rollups run."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["RetentionPolicy"]


class RetentionPolicy(BaseModel):
    """How long raw samples, 5-minute and hourly rollups are kept (reports read the outage ledger and
    rollups, so raw samples are only needed until they are rolled up)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    raw_days: int = Field(
        default=8,
        ge=1,
        le=3650,
        description="Days raw samples (ICMP rounds, interface and device metric samples) are kept.",
    )
    polls_days: int = Field(
        default=8,
        ge=1,
        le=3650,
        description=(
            "Days the per-poll log (times, success, lateness) is kept; a poll is also kept until its "
            "hour is rolled up into poll_rollups, which the reports read for older months."
        ),
    )
    five_minute_days: int = Field(
        default=400,
        ge=1,
        le=36500,
        description="Days 5-minute rollups are kept (400: 13 months of full-precision 95th percentiles).",
    )
    hourly_days: int | None = Field(
        default=None,
        ge=1,
        le=36500,
        description="Days hourly rollups are kept; null (the default) keeps them for ever.",
    )
    rollup_grace_seconds: int = Field(
        default=180,
        ge=0,
        le=86400,
        description="A bucket is rolled up once its end is this far in the past (≥ 2 × the longest poll interval).",
    )
    batch_rows: int = Field(
        default=5000,
        ge=100,
        le=1_000_000,
        description="Rows deleted per transaction, so writers are never blocked for long.",
    )

    @model_validator(mode="after")
    def _longer_rollups(self) -> RetentionPolicy:
        if self.hourly_days is not None and self.hourly_days < self.five_minute_days:
            raise ValueError(
                "hourly_days must be at least five_minute_days (or null to keep hourly for ever)"
            )
        return self

    @property
    def grace(self) -> timedelta:
        """The rollup grace period as a timedelta."""
        return timedelta(seconds=self.rollup_grace_seconds)
