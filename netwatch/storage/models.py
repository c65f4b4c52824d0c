"""The database schema as typed SQLAlchemy models; table and column names are a contract.

Every table says in ``info["write"]`` how the batched writer stores it: ``append`` rows are
inserted once and a replayed duplicate is ignored; ``upsert`` rows replace the row with the same
primary key. Timestamps are :class:`UTCDateTime`: aware in, aware UTC out, on every backend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from netwatch.storage.binds import utc_instant

__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "Device",
    "DeviceMetricSample",
    "IcmpRollup",
    "InstanceRun",
    "Interface",
    "InterfaceRollup",
    "InterfaceSample",
    "LinkOutage",
    "NotificationSent",
    "Outage",
    "OutageAnnotation",
    "Poll",
    "PollRollup",
    "RollupProgress",
    "SingletonRun",
    "Site",
    "SiteLink",
    "SiteState",
    "TargetState",
    "UTCDateTime",
]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names Alembic can rely on across backends and revisions."""

# SQLite only autoincrements an ``INTEGER PRIMARY KEY``, not a ``BIGINT`` one.
_BigId = BigInteger().with_variant(Integer(), "sqlite")

_APPEND: dict[str, Any] = {"info": {"write": "append"}}
_UPSERT: dict[str, Any] = {"info": {"write": "upsert"}}


class UTCDateTime(TypeDecorator[datetime]):
    """A ``timestamp with time zone`` that refuses naive datetimes and always reads back aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Reject naive datetimes; store the instant in UTC."""
        return utc_instant(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """SQLite hands back naive UTC, PostgreSQL the session zone: both become aware UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base carrying the shared metadata and its naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class Site(Base):
    """A site of the inventory, mirrored so reports and SQL users can join on its code."""

    __tablename__ = "sites"
    __table_args__ = _UPSERT

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    district: Mapped[str] = mapped_column(String(64))
    parent: Mapped[str | None] = mapped_column(String(64))
    sla_target: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime]


class Device(Base):
    """A polled device of the inventory; no foreign keys, since inventories change under reload."""

    __tablename__ = "devices"
    __table_args__ = _UPSERT

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(64))
    upstream: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime]


class Poll(Base):
    """One poll of a target by one collector kind; coverage and lateness come from its times.

    An ICMP round's figures are in its poll's row (one row a round, not two): probes sent and
    received, RTT statistics and jitter, NULL for SNMP polls and for rounds that measured nothing.
    The ``icmp_samples`` view (revision 0009) shows them under their former table's name.
    """

    __tablename__ = "polls"
    __table_args__ = (
        UniqueConstraint("target", "kind", "scheduled_at"),
        Index(None, "scheduled_at"),
        _APPEND,
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    scheduled_at: Mapped[datetime]
    started_at: Mapped[datetime]
    duration_seconds: Mapped[float] = mapped_column(Float)
    success: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(String(36))
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    """Started no later than a tenth of the job's interval after ``scheduled_at``, judged when
    recorded; NULL for polls recorded before revision 0008."""
    sent: Mapped[int | None] = mapped_column(Integer)
    received: Mapped[int | None] = mapped_column(Integer)
    rtt_min_seconds: Mapped[float | None] = mapped_column(Float)
    rtt_avg_seconds: Mapped[float | None] = mapped_column(Float)
    rtt_max_seconds: Mapped[float | None] = mapped_column(Float)
    jitter_seconds: Mapped[float | None] = mapped_column(Float)


class InstanceRun(Base):
    """One daemon start; time covered by no run's [started_at, stopped_at or last heartbeat] is a gap."""

    __tablename__ = "instance_runs"
    __table_args__ = (Index(None, "started_at"), _UPSERT)

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance: Mapped[str] = mapped_column(String(255))
    shard: Mapped[str] = mapped_column(String(32))
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]


class TargetState(Base):
    """A target's current health per collector kind, persisted so a restart resumes it."""

    __tablename__ = "target_states"
    __table_args__ = _UPSERT

    target: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime | None]
    failed_rounds: Mapped[int] = mapped_column(Integer)
    good_rounds: Mapped[int] = mapped_column(Integer)
    first_failed_at: Mapped[datetime | None]
    first_good_at: Mapped[datetime | None]
    last_poll_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class SiteState(Base):
    """A site's current state and, when it is unreachable or down, why."""

    __tablename__ = "site_states"
    __table_args__ = _UPSERT

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime | None]
    cause: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime]


class Interface(Base):
    """An interface netwatch discovered on a device, with its names kept up to date."""

    __tablename__ = "interfaces"
    __table_args__ = _UPSERT

    device: Mapped[str] = mapped_column(String(255), primary_key=True)
    ifindex: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ifname: Mapped[str] = mapped_column(String(255))
    ifalias: Mapped[str] = mapped_column(String(255))
    iftype: Mapped[int | None] = mapped_column(Integer)
    speed_bps: Mapped[float | None] = mapped_column(Float)
    contracted_bps: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime]


class InterfaceSample(Base):
    """One poll of one interface: rates over the last interval and netwatch's corrected totals.

    Totals are netwatch's own wrap- and reboot-corrected counters, never the raw device value;
    a rate is NULL where none could be computed honestly (first sample, reboot, reset).
    """

    __tablename__ = "interface_samples"
    __table_args__ = (
        UniqueConstraint("device", "ifindex", "scheduled_at"),
        Index(None, "scheduled_at"),
        _APPEND,
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    device: Mapped[str] = mapped_column(String(255))
    ifindex: Mapped[int] = mapped_column(Integer)
    scheduled_at: Mapped[datetime]
    started_at: Mapped[datetime]
    oper_up: Mapped[bool | None] = mapped_column(Boolean)
    in_bps: Mapped[float | None] = mapped_column(Float)
    out_bps: Mapped[float | None] = mapped_column(Float)
    in_octets_total: Mapped[float | None] = mapped_column(Float)
    out_octets_total: Mapped[float | None] = mapped_column(Float)
    in_errors_total: Mapped[float | None] = mapped_column(Float)
    out_errors_total: Mapped[float | None] = mapped_column(Float)
    in_discards_total: Mapped[float | None] = mapped_column(Float)
    out_discards_total: Mapped[float | None] = mapped_column(Float)
    utilisation_in_ratio: Mapped[float | None] = mapped_column(Float)
    utilisation_out_ratio: Mapped[float | None] = mapped_column(Float)


class DeviceMetricSample(Base):
    """One value of a profile metric (CPU, storage, UPS, SAN port…) from one poll."""

    __tablename__ = "device_metric_samples"
    __table_args__ = (
        UniqueConstraint("device", "metric", "labels", "scheduled_at"),
        Index(None, "scheduled_at"),
        _APPEND,
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    device: Mapped[str] = mapped_column(String(255))
    metric: Mapped[str] = mapped_column(String(128))
    labels: Mapped[str] = mapped_column(String(512))
    scheduled_at: Mapped[datetime]
    value: Mapped[float] = mapped_column(Float)


class Outage(Base):
    """The outage ledger: one row per interval a site spent down, unreachable, degraded or in
    maintenance. ``ended_at`` is NULL while the interval is open. Reports sum time from these
    intervals (and from the gaps between instance runs), never by counting samples.
    """

    __tablename__ = "outages"
    __table_args__ = (
        UniqueConstraint("site", "state", "started_at"),
        Index(None, "started_at"),
        Index(None, "ended_at"),
        {"info": {"write": "upsert", "upsert_key": ("site", "state", "started_at")}},
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    cause: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    run_id: Mapped[str] = mapped_column(String(36))
    updated_at: Mapped[datetime]


class NotificationSent(Base):
    """When each notification (channel, alert, site, status, outage start) last went out, so a
    restart neither repeats a page nor forgets a reminder."""

    __tablename__ = "notifications_sent"
    __table_args__ = _UPSERT

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    sent_at: Mapped[datetime]


class OutageAnnotation(Base):
    """An operator's correction of one outage (cause, ticket, reclassification), audited: who, when,
    and the outage's effective fields before and after (JSON). The newest annotation of an outage is
    the one in force."""

    __tablename__ = "outage_annotations"
    __table_args__ = (Index(None, "outage_id"), _APPEND)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    outage_id: Mapped[int] = mapped_column(BigInteger)
    cause: Mapped[str | None] = mapped_column(String(255))
    ticket: Mapped[str | None] = mapped_column(String(128))
    reclassified_as: Mapped[str | None] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    before: Mapped[str] = mapped_column(Text)
    after: Mapped[str] = mapped_column(Text)


class InterfaceRollup(Base):
    """Interface traffic per bucket (``resolution`` 5m or 1h): average and peak rates, octets, and
    for hourly buckets the 95th percentile of the hour's 5-minute averages."""

    __tablename__ = "interface_rollups"
    __table_args__ = (Index(None, "bucket_start"), _UPSERT)

    device: Mapped[str] = mapped_column(String(255), primary_key=True)
    ifindex: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    resolution: Mapped[str] = mapped_column(String(8), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    samples: Mapped[int] = mapped_column(Integer)
    in_bps_avg: Mapped[float | None] = mapped_column(Float)
    out_bps_avg: Mapped[float | None] = mapped_column(Float)
    in_bps_max: Mapped[float | None] = mapped_column(Float)
    out_bps_max: Mapped[float | None] = mapped_column(Float)
    in_bps_p95: Mapped[float | None] = mapped_column(Float)
    out_bps_p95: Mapped[float | None] = mapped_column(Float)
    in_octets: Mapped[float | None] = mapped_column(Float)
    out_octets: Mapped[float | None] = mapped_column(Float)


class IcmpRollup(Base):
    """ICMP rounds per bucket (``resolution`` 5m or 1h): probes sent and answered, RTT statistics."""

    __tablename__ = "icmp_rollups"
    __table_args__ = (Index(None, "bucket_start"), _UPSERT)

    target: Mapped[str] = mapped_column(String(255), primary_key=True)
    resolution: Mapped[str] = mapped_column(String(8), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    rounds: Mapped[int] = mapped_column(Integer)
    sent: Mapped[int] = mapped_column(Integer)
    received: Mapped[int] = mapped_column(Integer)
    rtt_min_seconds: Mapped[float | None] = mapped_column(Float)
    rtt_avg_seconds: Mapped[float | None] = mapped_column(Float)
    rtt_max_seconds: Mapped[float | None] = mapped_column(Float)


class PollRollup(Base):
    """Polls per target, collector kind and UTC hour: all of them, those on time, and those with no
    on-time verdict (recorded before revision 0008); the availability report reads its poll counts
    here, since raw polls are kept only days."""

    __tablename__ = "poll_rollups"
    __table_args__ = (Index(None, "bucket_start"), _UPSERT)

    target: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    polls: Mapped[int] = mapped_column(Integer)
    on_time: Mapped[int] = mapped_column(Integer)
    unjudged: Mapped[int] = mapped_column(Integer)


class RollupProgress(Base):
    """How far each rollup has been computed (its incremental cursor), so a run resumes there."""

    __tablename__ = "rollup_progress"
    __table_args__ = _UPSERT

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    done_until: Mapped[datetime]
    updated_at: Mapped[datetime]


class SiteLink(Base):
    """A site's links as the inventory lists them (mirrored like ``sites``), so reports know which
    sites have several links and what each is called."""

    __tablename__ = "site_links"
    __table_args__ = _UPSERT

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    link: Mapped[str] = mapped_column(String(255), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    device: Mapped[str] = mapped_column(String(255))
    interface: Mapped[str | None] = mapped_column(String(255))
    contracted_bps: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime]


class LinkOutage(Base):
    """The link ledger: one row per interval one link of a site spent down or degraded, written
    like ``outages``; ``link`` is the link's stable key (``device`` or ``device/interface``)."""

    __tablename__ = "link_outages"
    __table_args__ = (
        UniqueConstraint("site", "link", "state", "started_at"),
        Index(None, "started_at"),
        Index(None, "ended_at"),
        {"info": {"write": "upsert", "upsert_key": ("site", "link", "state", "started_at")}},
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    link: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    cause: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    run_id: Mapped[str] = mapped_column(String(36))
    updated_at: Mapped[datetime]


class SingletonRun(Base):
    """One run of a job that must run once per period across all shards (rollups and retention):
    taken under a PostgreSQL advisory lock; the unique (name, period_start) makes "once" hold."""

    __tablename__ = "singleton_runs"
    __table_args__ = (UniqueConstraint("name", "period_start"), _APPEND)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[datetime]
    instance: Mapped[str] = mapped_column(String(255))
    run_id: Mapped[str] = mapped_column(String(36))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
