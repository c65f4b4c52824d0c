"""Monthly availability per site, district and province: ARCHITECTURE.md "Availability, defined once".

Two halves: :func:`load_month` is the only SQL (SQLAlchemy Core, the same on SQLite and
PostgreSQL) and returns plain data; :func:`compute` is pure and does all the arithmetic.

Choices where the specification is silent (also in the module's tests):

- **Period.** Local month boundaries in the report's zone, so a month has 745 h where a DST change
  gives an hour back. For the current month the period ends at ``now`` (month to date).
- **Unknown** is the union of monitoring gaps (time no netwatch run covered) and the ledger's
  ``unknown`` intervals. A site with no ledger interval in the period and no poll of any of its
  devices in the period is *unmeasured*: the whole period is unknown. (When the period has no polls
  at all, e.g. purged, their absence proves nothing and this rule is not applied.)
- **Annotations.** The newest annotation of an outage is in force; its ``reclassified_as`` replaces
  the interval's state before precedence is applied, its cause (else the ledger's) is listed.
- **Outages** are the ledger's DOWN intervals (after reclassification) that keep some DOWN time in
  the period once precedence has been applied; an interval wholly hidden under maintenance,
  unknown or unreachable is not an outage. Its length in the report is that DOWN time in the
  period; *longest outage* is the largest such length.
- **Polls on time**: a poll is on time when it started no later than a tenth of its job's
  configured interval after it was scheduled — the rule of ``netwatch_polls_late_total``, judged
  when the poll is recorded (``polls.on_time``), against the interval in force then. Polls recorded
  before that column existed (revision 0008) have no verdict: they count as polls (for *measured*)
  but their lateness is unknown, and the share on time is on-time polls ÷ polls with a verdict.
  Polls count for the site of their device.
- **Where poll counts come from.** The hourly poll rollups (``poll_rollups``) for the hours already
  rolled up, the raw poll log only for the tail after the rollup's cursor (``rollup_progress``
  ``polls_1h``), so a month whose raw polls retention has deleted keeps its counts. An hourly bucket
  counts in the month its UTC hour starts in: exact for zones whose offset is whole hours (Asia/Ho_Chi_Minh);
  in a half-hour zone the hour across a month boundary counts in the month it starts in.
- **Summaries** (district, province) add seconds, outages and polls over their sites and take the
  ratios of the sums: time-weighted, never an average of ratios. Longest outage is the maximum.
- **Links.** A site with more than one link (the ``site_links`` mirror of its ``links:``) gets one
  row per link under its own, from the link ledger (``link_outages``: each link's down and degraded
  intervals). A link has no unknown, maintenance or unreachable time of its own: those come from
  its site (gaps, the site's unknown, maintenance and unreachable intervals, after annotations), and
  precedence is applied as for a site. Outages, longest, MTTR and MTBF are the same definitions on
  the link's DOWN intervals. Polls are counted per site only, so a link row has no polls on time and
  no SLA verdict. Links take no part in the district and province sums.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, TableClause, and_, case, column, exists, func, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from netwatch.sharding import district_key
from netwatch.sitehealth import PRECEDENCE, SiteState
from netwatch.storage.models import (
    Device,
    LinkOutage,
    Outage,
    OutageAnnotation,
    Poll,
    PollRollup,
    RollupProgress,
    Site,
    SiteLink,
)
from netwatch.storage.repository import monitoring_gaps, site_monitoring_gaps
from netwatch.storage.rollups import POLL_ROLLUP

__all__ = [
    "DEFAULT_TZ",
    "AnnotatedOutage",
    "AnnotationInForce",
    "AvailabilityReport",
    "Figures",
    "LedgerInterval",
    "LinkInfo",
    "LinkInterval",
    "LinkRow",
    "MonthData",
    "PollCounts",
    "SiteInfo",
    "SiteRow",
    "Summary",
    "compute",
    "load_month",
    "month_bounds",
    "parse_month",
]

DEFAULT_TZ = "Asia/Ho_Chi_Minh"
"""The zone whose local months reports cover unless told otherwise."""

RECLASSIFIABLE = (SiteState.MAINTENANCE, SiteState.DOWN, SiteState.UNREACHABLE, SiteState.DEGRADED)
"""States an operator may reclassify an outage as."""

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_ZERO = timedelta(0)

Interval = tuple[datetime, datetime]


MIN_YEAR, MAX_YEAR = 1970, 9998
"""Months a report can name: the Unix era, and never the last representable year (its next month overflows)."""


def parse_month(month: str) -> tuple[int, int]:
    """``YYYY-MM`` as (year, month); ValueError saying the expected form otherwise."""
    match = _MONTH.match(month)
    if match is None:
        raise ValueError(f"month {month!r} is not of the form YYYY-MM (e.g. 2026-10)")
    year = int(match.group(1))
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"month {month!r}: the year must be between {MIN_YEAR} and {MAX_YEAR}")
    return year, int(match.group(2))


def month_bounds(month: str, tz: str) -> tuple[datetime, datetime]:
    """The month's local start and the next month's local start, as aware UTC datetimes."""
    year, number = parse_month(month)
    zone = ZoneInfo(tz)
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """A site as the ``sites`` mirror knows it."""

    code: str
    name: str
    kind: str
    district: str
    parent: str | None
    sla_target: float


@dataclass(frozen=True, slots=True)
class LedgerInterval:
    """One outage-ledger row; ``ended_at`` None while it is open."""

    id: int
    site: str
    state: SiteState
    cause: str | None
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """One of a site's links as the ``site_links`` mirror knows it."""

    site: str
    link: str
    name: str
    position: int


@dataclass(frozen=True, slots=True)
class LinkInterval:
    """One link-ledger row (a link of a site down or degraded); ``ended_at`` None while open."""

    site: str
    link: str
    state: SiteState
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class AnnotationInForce:
    """The newest annotation of one outage."""

    id: int
    outage_id: int
    cause: str | None
    ticket: str | None
    reclassified_as: SiteState | None
    author: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PollCounts:
    """Polls of a site's devices in the month: all of them, those on time, and those with no
    on-time verdict (recorded before revision 0008)."""

    total: int = 0
    on_time: int = 0
    unjudged: int = 0

    @property
    def judged(self) -> int:
        """Polls with an on-time verdict."""
        return self.total - self.unjudged


@dataclass(frozen=True, slots=True)
class PolledSites:
    """Whether a month has any poll, and which sites without a ledger interval were polled: all
    that decides whether a site was *measured*. The daemon's month figures read this instead of
    counting polls, which at province scale is a scan of millions of raw rows every minute."""

    any_poll: bool
    sites: frozenset[str]


@dataclass(frozen=True, slots=True)
class MonthData:
    """Everything :func:`compute` needs, read from the database for one local month."""

    month: str
    tz: str
    sites: tuple[SiteInfo, ...]
    intervals: tuple[LedgerInterval, ...]
    annotations: Mapping[int, AnnotationInForce]
    gaps: tuple[Interval, ...]
    polls: Mapping[str, PollCounts]
    links: Mapping[str, tuple[LinkInfo, ...]] = field(default_factory=dict)
    link_intervals: tuple[LinkInterval, ...] = ()
    site_gaps: Mapping[str, tuple[Interval, ...]] = field(default_factory=dict)
    """Per site, when no live run of its shard measured it (``--shard``); absent: ``gaps``."""
    polled: PolledSites | None = None
    """Read instead of ``polls`` (then empty) by ``load_month(count_polls=False)``."""

    def polled_sites(self) -> PolledSites:
        """Which sites count as polled: from ``polled`` when it was read, else from the counts."""
        if self.polled is not None:
            return self.polled
        counted = frozenset(code for code, c in self.polls.items() if c.total)
        return PolledSites(bool(counted), counted)


@dataclass(frozen=True, slots=True)
class Figures:
    """Seconds per state over a period and the counts; every ratio is derived from these sums."""

    period: timedelta
    seconds: Mapping[SiteState, timedelta]
    outages: int
    longest_outage: timedelta | None
    polls: PollCounts

    def __getitem__(self, state: SiteState) -> timedelta:
        """Time spent in ``state``."""
        return self.seconds.get(state, _ZERO)

    @property
    def available(self) -> timedelta:
        """Up plus degraded: the time users at the site could work."""
        return self[SiteState.UP] + self[SiteState.DEGRADED]

    @property
    def availability(self) -> float | None:
        """(up + degraded) ÷ (period − maintenance − unknown); None when nothing is left to judge."""
        return _ratio(self.available, self.period - self[SiteState.MAINTENANCE] - self[SiteState.UNKNOWN])

    @property
    def own_availability(self) -> float | None:
        """Availability leaving out time unreachable because of a parent as well."""
        judged = (
            self.period - self[SiteState.MAINTENANCE] - self[SiteState.UNKNOWN] - self[SiteState.UNREACHABLE]
        )
        return _ratio(self.available, judged)

    @property
    def mttr(self) -> timedelta | None:
        """Down time ÷ outages; None without outages."""
        return self[SiteState.DOWN] / self.outages if self.outages else None

    @property
    def mtbf(self) -> timedelta | None:
        """(up + degraded) ÷ outages; None without outages."""
        return self.available / self.outages if self.outages else None

    @property
    def coverage(self) -> float | None:
        """(period − unknown) ÷ period."""
        return _ratio(self.period - self[SiteState.UNKNOWN], self.period)

    @property
    def polls_on_time(self) -> float | None:
        """Share of the polls with a verdict that started on time; None without such polls."""
        return self.polls.on_time / self.polls.judged if self.polls.judged else None


@dataclass(frozen=True, slots=True)
class AnnotatedOutage:
    """An annotation in force on a ledger interval that overlaps the period, for listing."""

    site: str
    interval: LedgerInterval
    annotation: AnnotationInForce

    @property
    def counted_as(self) -> SiteState:
        """The state the interval counts as after the annotation."""
        return self.annotation.reclassified_as or self.interval.state

    @property
    def cause(self) -> str | None:
        """The annotation's cause, else the ledger's."""
        return self.annotation.cause or self.interval.cause


@dataclass(frozen=True, slots=True)
class LinkRow:
    """One link's line under its site's (sites with more than one link only)."""

    link: LinkInfo
    figures: Figures


@dataclass(frozen=True, slots=True)
class SiteRow:
    """One site's line of the report, with its links' lines where it has several."""

    site: SiteInfo
    figures: Figures
    measured: bool
    unreachable_causes: tuple[str, ...]
    annotations: tuple[AnnotatedOutage, ...]
    links: tuple[LinkRow, ...] = ()

    @property
    def sla_met(self) -> bool | None:
        """Own availability ≥ the SLA target; None when own availability is blank."""
        own = self.figures.own_availability
        return None if own is None else own >= self.site.sla_target


@dataclass(frozen=True, slots=True)
class Summary:
    """A district's or the province's sums over its sites."""

    code: str
    name: str
    sites: int
    figures: Figures
    sla_met: int
    sla_judged: int


@dataclass(frozen=True, slots=True)
class AvailabilityReport:
    """The computed report: site rows grouped by district, district and province summaries."""

    month: str
    tz: str
    start: datetime
    end: datetime
    month_to_date: bool
    generated_at: datetime
    rows: tuple[SiteRow, ...]
    districts: tuple[Summary, ...]
    province: Summary
    annotations: tuple[AnnotatedOutage, ...] = field(default=())

    @property
    def year_month(self) -> tuple[int, int]:
        """(year, month) of the report."""
        return parse_month(self.month)


def _ratio(part: timedelta, whole: timedelta) -> float | None:
    return part / whole if whole > _ZERO else None


# --- reading ---------------------------------------------------------------------------------


def load_month(
    engine: Engine,
    month: str,
    tz: str = DEFAULT_TZ,
    *,
    site: str | None = None,
    district: str | None = None,
    count_polls: bool = True,
) -> MonthData:
    """Read the sites, ledger intervals, annotations in force, monitoring gaps and poll counts of
    one local month (optionally of one site or one district). Without ``count_polls`` only which
    sites were polled is read (:class:`PolledSites`): availability and outages stay exact, the
    share of polls on time is not computed."""
    start, end = month_bounds(month, tz)
    s = Site.__table__.c
    site_query = select(s.code, s.name, s.kind, s.district, s.parent, s.sla_target).order_by(s.code)
    if site is not None:
        site_query = site_query.where(s.code == site)
    if district is not None:
        site_query = site_query.where(s.district == district)
    with engine.connect() as conn:
        sites = tuple(SiteInfo(**row) for row in conn.execute(site_query).mappings())
        codes = [x.code for x in sites]
        intervals = _load_intervals(conn, codes, start, end) if codes else ()
        annotations = _load_annotations(conn, codes, start, end) if codes else {}
        every_site = site is None and district is None
        polls: Mapping[str, PollCounts] = {}
        polled = None
        if count_polls:
            polls = _load_polls(conn, codes, start, end, every_site=every_site) if codes else {}
        else:
            with_intervals = {i.site for i in intervals}
            unledgered = [c for c in codes if c not in with_intervals]
            polled = _load_polled(conn, unledgered, start, end)
        links = _load_links(conn, codes, start, end) if codes else ({}, ())
        known = frozenset(conn.execute(select(s.code)).scalars())
    gaps = tuple(monitoring_gaps(engine, start, end))
    keys = {x.code: district_key(x.district, known) for x in sites}
    site_gaps = {code: tuple(g) for code, g in site_monitoring_gaps(engine, start, end, keys).items()}
    return MonthData(
        month, tz, sites, intervals, annotations, gaps, polls, *links, site_gaps=site_gaps, polled=polled
    )


def _load_links(
    conn: Any, codes: Sequence[str], start: datetime, end: datetime
) -> tuple[dict[str, tuple[LinkInfo, ...]], tuple[LinkInterval, ...]]:
    """The links of the sites with more than one, and those links' ledger intervals in the period."""
    k, o = SiteLink.__table__.c, LinkOutage.__table__.c
    several = select(k.site).where(k.site.in_(codes)).group_by(k.site).having(func.count() > 1)
    found: dict[str, list[LinkInfo]] = defaultdict(list)
    query = select(k.site, k.link, k.name, k.position).where(k.site.in_(several)).order_by(k.site, k.position)
    for row in conn.execute(query):
        found[row.site].append(LinkInfo(row.site, row.link, row.name, row.position))
    if not found:
        return {}, ()
    overlapping = and_(o.started_at < end, or_(o.ended_at.is_(None), o.ended_at > start))
    rows = conn.execute(
        select(o.site, o.link, o.state, o.started_at, o.ended_at)
        .where(overlapping, o.site.in_(several))
        .order_by(o.site, o.link, o.started_at, o.id)
    )
    intervals = tuple(
        LinkInterval(r.site, r.link, SiteState(r.state), r.started_at, r.ended_at) for r in rows
    )
    return {site: tuple(links) for site, links in found.items()}, intervals


def _overlapping(start: datetime, end: datetime) -> Any:
    o = Outage.__table__.c
    return and_(o.started_at < end, or_(o.ended_at.is_(None), o.ended_at > start))


def _load_intervals(
    conn: Any, codes: Sequence[str], start: datetime, end: datetime
) -> tuple[LedgerInterval, ...]:
    o = Outage.__table__.c
    query = (
        select(o.id, o.site, o.state, o.cause, o.started_at, o.ended_at)
        .where(_overlapping(start, end), o.site.in_(codes))
        .order_by(o.site, o.started_at, o.id)
    )
    return tuple(
        LedgerInterval(row.id, row.site, SiteState(row.state), row.cause, row.started_at, row.ended_at)
        for row in conn.execute(query)
    )


def _load_annotations(
    conn: Any, codes: Sequence[str], start: datetime, end: datetime
) -> dict[int, AnnotationInForce]:
    o, a = Outage.__table__.c, OutageAnnotation.__table__.c
    query = (
        select(a.id, a.outage_id, a.cause, a.ticket, a.reclassified_as, a.author, a.created_at)
        .select_from(OutageAnnotation.__table__.join(Outage.__table__, o.id == a.outage_id))
        .where(_overlapping(start, end), o.site.in_(codes))
        .order_by(a.outage_id, a.created_at, a.id)
    )
    found: dict[int, AnnotationInForce] = {}
    for row in conn.execute(query):
        state = SiteState(row.reclassified_as) if row.reclassified_as else None
        found[row.outage_id] = AnnotationInForce(
            row.id, row.outage_id, row.cause, row.ticket, state, row.author, row.created_at
        )
    return found


class _polls_in_time_order(TableClause):
    """The ``polls`` table, read on SQLite through its index on ``scheduled_at`` alone."""

    inherit_cache = True


@compiles(_polls_in_time_order, "sqlite")
def _polls_in_time_order_sqlite(element: _polls_in_time_order, compiler: SQLCompiler, **kw: Any) -> str:
    # With statistics SQLite prefers the (target, kind, scheduled_at) index for the month's range,
    # whose order is not the table's (polls are written in time order): a random read per poll,
    # 3 s more at 1.3 M polls. The scheduled_at index reads the month in table order.
    rendered = compiler.preparer.format_table(element)
    if not kw.get("asfrom"):
        return rendered
    (index,) = (
        i for i in Poll.metadata.tables["polls"].indexes if [c.name for c in i.columns] == ["scheduled_at"]
    )
    return f"{rendered} INDEXED BY {index.name}"


def _load_polls(
    conn: Any, codes: Sequence[str], start: datetime, end: datetime, *, every_site: bool
) -> dict[str, PollCounts]:
    # Rolled-up hours from poll_rollups, the rest from the raw log: retention deletes raw polls
    # after days, and a month of them is tens of millions of rows at province scale.
    split = _raw_from(conn, start, end)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    d = Device.__table__.c
    devices = select(d.name).where(d.site.in_(codes))
    parts = []
    if split > start:
        r = PollRollup.__table__.c
        parts.append(
            select(
                r.target,
                func.sum(r.polls).label("total"),
                func.sum(r.on_time).label("on_time"),
                func.sum(r.unjudged).label("unjudged"),
            )
            .where(r.bucket_start >= start, r.bucket_start < split, r.target.in_(devices))
            .group_by(r.target)
        )
    if split < end:
        polls = Poll.__table__
        if every_site:
            polls = _polls_in_time_order("polls", *(column(c.name, c.type) for c in Poll.__table__.c))
        q = polls.c
        parts.append(
            select(
                q.target,
                func.count().label("total"),
                func.sum(case((q.on_time.is_(true()), 1), else_=0)).label("on_time"),
                func.sum(case((q.on_time.is_(None), 1), else_=0)).label("unjudged"),
            )
            .where(q.scheduled_at >= split, q.scheduled_at < end, q.target.in_(devices))
            .group_by(q.target)
        )
    for part in parts:
        per_target = part.subquery()
        query = (
            select(
                d.site,
                func.sum(per_target.c.total),
                func.sum(per_target.c.on_time),
                func.sum(per_target.c.unjudged),
            )
            .select_from(per_target.join(Device.__table__, d.name == per_target.c.target))
            .group_by(d.site)
        )
        for site_code, total, on_time, unjudged in conn.execute(query):
            found = counts[site_code]
            found[0] += int(total or 0)
            found[1] += int(on_time or 0)
            found[2] += int(unjudged or 0)
    return {code: PollCounts(*found) for code, found in counts.items() if found[0]}


def _load_polled(conn: Any, codes: Sequence[str], start: datetime, end: datetime) -> PolledSites:
    # Each question stops at its first row: one index seek for the month, one per device of
    # ``codes`` (the sites with no ledger interval, rarely any on a running daemon).
    split = _raw_from(conn, start, end)
    r, q, d = PollRollup.__table__.c, Poll.__table__.c, Device.__table__.c
    rolled = and_(r.bucket_start >= start, r.bucket_start < split)
    raw = and_(q.scheduled_at >= split, q.scheduled_at < end)
    any_poll = (
        split > start and conn.execute(select(r.target).where(rolled).limit(1)).first() is not None
    ) or (split < end and conn.execute(select(q.id).where(raw).limit(1)).first() is not None)
    if not any_poll or not codes:
        return PolledSites(any_poll, frozenset())
    polled = or_(
        exists().where(r.target == d.name, rolled),
        exists().where(q.target == d.name, raw),
    )
    sites = conn.execute(select(d.site).distinct().where(d.site.in_(codes), polled)).scalars()
    return PolledSites(True, frozenset(sites))


def _raw_from(conn: Any, start: datetime, end: datetime) -> datetime:
    """Where the period's polls stop being in ``poll_rollups`` and must be read raw (within it)."""
    return min(max(_rolled_up_until(conn) or start, start), end)


def _rolled_up_until(conn: Any) -> datetime | None:
    """The poll rollup's cursor: every hour starting before it is in ``poll_rollups``."""
    g = RollupProgress.__table__.c
    done: datetime | None = conn.execute(select(g.done_until).where(g.name == POLL_ROLLUP)).scalar()
    return done


# --- computing -------------------------------------------------------------------------------

Span = tuple[datetime, datetime, SiteState]


def _clip(begin: datetime, finish: datetime | None, start: datetime, end: datetime) -> Interval | None:
    lo, hi = max(begin, start), min(finish or end, end)
    return (lo, hi) if lo < hi else None


def _timeline(spans: Iterable[Span], start: datetime, end: datetime) -> list[Span]:
    """[start, end) cut into pieces, each in the state that prevails there (UP where none applies)."""
    rank = {state: i for i, state in enumerate(PRECEDENCE)}
    events: dict[datetime, list[int]] = defaultdict(lambda: [0] * len(PRECEDENCE))
    for begin, finish, state in spans:
        events[begin][rank[state]] += 1
        events[finish][rank[state]] -= 1
    # The period's ends are cut points even where no interval begins or ends there.
    events.setdefault(start, [0] * len(PRECEDENCE))
    events.setdefault(end, [0] * len(PRECEDENCE))
    active = [0] * len(PRECEDENCE)
    pieces: list[Span] = []
    points = sorted(events)
    for here, there in itertools.pairwise(points):
        active = [a + b for a, b in zip(active, events[here], strict=True)]
        state = next((PRECEDENCE[i] for i, n in enumerate(active) if n > 0), SiteState.UP)
        if pieces and pieces[-1][2] is state and pieces[-1][1] == here:
            pieces[-1] = (pieces[-1][0], there, state)
        else:
            pieces.append((here, there, state))
    return pieces


def _overlap_with(pieces: list[Span], starts: list[datetime], span: Interval, state: SiteState) -> timedelta:
    total = _ZERO
    i = max(bisect.bisect_right(starts, span[0]) - 1, 0)
    while i < len(pieces) and pieces[i][0] < span[1]:
        lo, hi, piece_state = pieces[i]
        if piece_state is state:
            total += max(_ZERO, min(hi, span[1]) - max(lo, span[0]))
        i += 1
    return total


def _site_row(
    site: SiteInfo,
    intervals: Sequence[LedgerInterval],
    data: MonthData,
    gaps: Sequence[Interval],
    start: datetime,
    end: datetime,
    polled: PolledSites,
) -> SiteRow:
    polls = data.polls.get(site.code, PollCounts())
    measured = bool(intervals) or site.code in polled.sites or not polled.any_poll
    spans: list[Span] = [(lo, hi, SiteState.UNKNOWN) for lo, hi in gaps]
    if not measured:
        spans.append((start, end, SiteState.UNKNOWN))
    downs: list[Interval] = []
    annotated: list[AnnotatedOutage] = []
    causes: set[str] = set()
    for interval in intervals:
        clipped = _clip(interval.started_at, interval.ended_at, start, end)
        if clipped is None:
            continue
        note = data.annotations.get(interval.id)
        state = (note.reclassified_as if note else None) or interval.state
        spans.append((*clipped, state))
        if state is SiteState.DOWN:
            downs.append(clipped)
        if note is not None:
            annotated.append(AnnotatedOutage(site.code, interval, note))
        # The ledger's cause of an unreachable interval is the ancestor to blame; an operator's
        # cause is prose and is listed with the annotations instead.
        if state is SiteState.UNREACHABLE and interval.cause:
            causes.add(interval.cause)
    figures = _figures(spans, downs, start, end, polls)
    links = _link_rows(site, [sp for sp in spans if sp[2] in _FROM_SITE], data, start, end)
    return SiteRow(site, figures, measured, tuple(sorted(causes)), tuple(annotated), links)


_FROM_SITE = (SiteState.UNKNOWN, SiteState.MAINTENANCE, SiteState.UNREACHABLE)
"""The states a link takes from its site."""


def _figures(
    spans: Iterable[Span], downs: Sequence[Interval], start: datetime, end: datetime, polls: PollCounts
) -> Figures:
    """Seconds per prevailing state over [start, end), and the DOWN intervals that keep DOWN time."""
    pieces = _timeline(spans, start, end)
    starts = [p[0] for p in pieces]
    seconds: dict[SiteState, timedelta] = {state: _ZERO for state in PRECEDENCE}
    for lo, hi, state in pieces:
        seconds[state] += hi - lo
    lengths = [_overlap_with(pieces, starts, span, SiteState.DOWN) for span in downs]
    lengths = [length for length in lengths if length > _ZERO]
    return Figures(end - start, seconds, len(lengths), max(lengths, default=None), polls)


def _link_rows(
    site: SiteInfo, inherited: Sequence[Span], data: MonthData, start: datetime, end: datetime
) -> tuple[LinkRow, ...]:
    links = data.links.get(site.code, ())
    if len(links) < 2:
        return ()
    own = [i for i in data.link_intervals if i.site == site.code]
    rows = []
    for link in links:
        spans = list(inherited)
        downs: list[Interval] = []
        for interval in own:
            if interval.link != link.link:
                continue
            clipped = _clip(interval.started_at, interval.ended_at, start, end)
            if clipped is None:
                continue
            spans.append((*clipped, interval.state))
            if interval.state is SiteState.DOWN:
                downs.append(clipped)
        rows.append(LinkRow(link, _figures(spans, downs, start, end, PollCounts())))
    return tuple(rows)


def _summary(code: str, name: str, rows: Sequence[SiteRow], period: timedelta) -> Summary:
    seconds: dict[SiteState, timedelta] = {state: _ZERO for state in PRECEDENCE}
    for row in rows:
        for state in PRECEDENCE:
            seconds[state] += row.figures[state]
    longest = [r.figures.longest_outage for r in rows if r.figures.longest_outage is not None]
    polls = PollCounts(
        sum(r.figures.polls.total for r in rows),
        sum(r.figures.polls.on_time for r in rows),
        sum(r.figures.polls.unjudged for r in rows),
    )
    figures = Figures(
        period * len(rows), seconds, sum(r.figures.outages for r in rows), max(longest, default=None), polls
    )
    verdicts = [r.sla_met for r in rows if r.sla_met is not None]
    return Summary(code, name, len(rows), figures, sum(verdicts), len(verdicts))


def compute(
    data: MonthData, now: datetime, *, progress: Callable[[int, int], None] | None = None
) -> AvailabilityReport:
    """The report for ``data``'s month as of ``now`` (month to date while the month is current);
    ``progress`` is told (sites computed, sites) after each site.

    Raises ValueError for a month that has not begun at ``now``.
    """
    start, month_end = month_bounds(data.month, data.tz)
    now = now.astimezone(UTC)
    if now <= start:
        raise ValueError(f"month {data.month} has not begun yet in {data.tz}")
    end = min(month_end, now)
    gaps = [clipped for lo, hi in data.gaps if (clipped := _clip(lo, hi, start, end)) is not None]
    shard_gaps = {
        code: [c for lo, hi in spans if (c := _clip(lo, hi, start, end)) is not None]
        for code, spans in data.site_gaps.items()
    }
    by_site: dict[str, list[LedgerInterval]] = defaultdict(list)
    for interval in data.intervals:
        by_site[interval.site].append(interval)
    polled = data.polled_sites()
    names = {s.code: s.name for s in data.sites}
    ordered = sorted(data.sites, key=lambda s: (s.district, s.code != s.district, s.code))
    computed: list[SiteRow] = []
    for s in ordered:
        site_gaps = shard_gaps.get(s.code, gaps)
        computed.append(_site_row(s, by_site.get(s.code, []), data, site_gaps, start, end, polled))
        if progress is not None:
            progress(len(computed), len(ordered))
    rows = tuple(computed)
    per_district: dict[str, list[SiteRow]] = defaultdict(list)
    for row in rows:
        per_district[row.site.district].append(row)
    districts = tuple(
        _summary(code, names.get(code, code), members, end - start) for code, members in per_district.items()
    )
    province = _summary("", "", rows, end - start)
    notes = tuple(
        sorted((n for r in rows for n in r.annotations), key=lambda n: (n.interval.started_at, n.interval.id))
    )
    return AvailabilityReport(
        data.month, data.tz, start, end, end < month_end, now, rows, districts, province, notes
    )
