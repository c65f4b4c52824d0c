"""Operators' annotations of outages (cause, ticket, reclassification), with an audit trail.

Each annotation is a new ``outage_annotations`` row carrying the outage's *effective* fields after
it (so the newest row alone is the one in force) and, as JSON, the effective fields before and
after: who changed what, and when, is never overwritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from netwatch.errors import StorageError
from netwatch.storage.models import Outage, OutageAnnotation

__all__ = [
    "RECLASSIFY_STATES",
    "AnnotationResult",
    "OutageNotFoundError",
    "annotate",
    "annotation_history",
    "effective_outage",
]

RECLASSIFY_STATES = ("maintenance", "down", "unreachable", "degraded")
"""States an outage may be reclassified as."""


class OutageNotFoundError(StorageError):
    """No outage-ledger row has the given id."""


@dataclass(frozen=True, slots=True)
class AnnotationResult:
    """The annotation written: its id and the outage's effective fields before and after it."""

    annotation_id: int
    outage_id: int
    before: dict[str, Any]
    after: dict[str, Any]


def _effective(conn: Connection, outage_id: int) -> dict[str, Any]:
    o, a = Outage.__table__.c, OutageAnnotation.__table__.c
    row = conn.execute(select(Outage.__table__).where(o.id == outage_id)).mappings().first()
    if row is None:
        raise OutageNotFoundError(f"no outage with id {outage_id}")
    latest = (
        conn.execute(
            select(a.cause, a.ticket, a.reclassified_as)
            .where(a.outage_id == outage_id)
            .order_by(a.created_at.desc(), a.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    fields: dict[str, Any] = {
        "site": row["site"],
        "state": row["state"],
        "cause": row["cause"],
        "ticket": None,
        "started_at": row["started_at"].isoformat(),
        "ended_at": row["ended_at"].isoformat() if row["ended_at"] else None,
    }
    if latest is not None:
        fields["state"] = latest["reclassified_as"] or row["state"]
        fields["cause"] = latest["cause"] if latest["cause"] is not None else row["cause"]
        fields["ticket"] = latest["ticket"]
    return fields


def effective_outage(engine: Engine, outage_id: int) -> dict[str, Any]:
    """The outage's fields with the annotation in force applied (OutageNotFoundError if none)."""
    with engine.connect() as conn:
        return _effective(conn, outage_id)


def annotate(
    engine: Engine,
    outage_id: int,
    *,
    author: str,
    cause: str | None = None,
    ticket: str | None = None,
    reclassify: str | None = None,
    now: datetime | None = None,
) -> AnnotationResult:
    """Record an annotation of ``outage_id``; fields left None keep their effective value.

    Raises OutageNotFoundError for an unknown id, ValueError for a state outside
    :data:`RECLASSIFY_STATES` or an annotation that changes nothing given.
    """
    if reclassify is not None and reclassify not in RECLASSIFY_STATES:
        raise ValueError(f"cannot reclassify as {reclassify!r}: use one of {', '.join(RECLASSIFY_STATES)}")
    if cause is None and ticket is None and reclassify is None:
        raise ValueError("nothing to annotate: give a cause, a ticket or a reclassification")
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    with engine.begin() as conn:
        before = _effective(conn, outage_id)
        original = conn.execute(
            select(Outage.__table__.c.state).where(Outage.__table__.c.id == outage_id)
        ).scalar_one()
        after = dict(before)
        if cause is not None:
            after["cause"] = cause
        if ticket is not None:
            after["ticket"] = ticket
        if reclassify is not None:
            after["state"] = reclassify
        row = {
            "outage_id": outage_id,
            "cause": after["cause"],
            "ticket": after["ticket"],
            "reclassified_as": after["state"] if after["state"] != original else None,
            "author": author,
            "created_at": stamp,
            "before": json.dumps(before, ensure_ascii=False, sort_keys=True),
            "after": json.dumps(after, ensure_ascii=False, sort_keys=True),
        }
        annotation_id = conn.execute(
            insert(OutageAnnotation).returning(OutageAnnotation.id), row
        ).scalar_one()
    return AnnotationResult(int(annotation_id), outage_id, before, after)


def annotation_history(engine: Engine, outage_id: int) -> list[dict[str, Any]]:
    """Every annotation of the outage, oldest first, with ``before``/``after`` decoded."""
    a = OutageAnnotation.__table__.c
    query = select(OutageAnnotation.__table__).where(a.outage_id == outage_id).order_by(a.created_at, a.id)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [{**row, "before": json.loads(row["before"]), "after": json.loads(row["after"])} for row in rows]
