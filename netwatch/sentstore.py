"""The alerting dispatcher's memory of what it sent, kept in the database.

Reads are served from a dict loaded at start (the dispatcher asks on its hot path and must not wait
for SQL); writes go through the batched writer, which never blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from netwatch.recording import RowSink


class SqlSentStore:
    """A ``SentStore`` backed by the ``notifications_sent`` table."""

    def __init__(self, writer: RowSink, loaded: Mapping[str, datetime]) -> None:
        self._writer = writer
        self._sent = dict(loaded)

    def was_sent(self, key: str) -> datetime | None:
        """When ``key`` last went out, or None."""
        return self._sent.get(key)

    def mark_sent(self, key: str, at: datetime) -> None:
        """Remember that ``key`` went out at ``at``."""
        self._sent[key] = at
        self._writer.put("notifications_sent", {"key": key, "sent_at": at})
