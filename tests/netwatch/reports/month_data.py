"""A synthetic October 2026 for the availability report, with every expected number worked by hand.

Sites (district TK: TK, TK-C01 under it, TK-NODATA never measured; district HA: HA). Local times
are Asia/Ho_Chi_Minh (UTC+7, no DST): the month is 2026-09-30 17:00 UTC to 2026-10-31 17:00 UTC,
31 days = 2,678,400 s. Netwatch was not running 2026-10-20 12:00–14:00 local (7,200 s unknown).

TK's ledger:
 1. down        09-30 22:00 → 10-01 02:00   crosses the month's local start: 7,200 s count
 2. maintenance 10-05 01:00 → 05:00         14,400 s
 3. down        10-05 02:00 → 03:00         inside the maintenance: hidden, not an outage
 4. down        10-10 08:00 → 09:30         5,400 s (TK-C01 is unreachable meanwhile)
 5. degraded    10-12 10:00 → 16:00         21,600 s
 6. down        10-15 09:00 → 10:00         annotated twice; the newest reclassifies it as
                                            maintenance (ticket VNPT-123): 3,600 s maintenance
 7. down        10-20 11:00 → 13:00         12:00–13:00 under the netwatch gap: 3,600 s down
 8. down        10-31 23:00 → open          3,600 s to the month's end
TK-C01: unreachable 10-10 08:03 → 09:30 (cause TK, 5,220 s, annotated with a cause only);
        down 10-25 20:00 → 10-26 08:00 (43,200 s).
HA: no ledger row in the month (one in September, annotated: must not appear).
Polls (``on_time`` written as the recorder judges it: lag ≤ a tenth of the job's interval, here the
poll spacing): tk-r1 icmp every 60 s, 8 of 10 on time (lag 1 s; 2 late with 7 s > 6 s), snmp every
300 s with 20 s lag (on time against 300 s, late against 60 s), one late poll before the month (not
counted); tkc01-r1 icmp every 300 s, 4 of 5 on time (one 40 s > 30 s); ha-r1 one poll every 60 s,
lag 5 s (on time).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert

from netwatch.storage.models import (
    Device,
    InstanceRun,
    LinkOutage,
    Outage,
    OutageAnnotation,
    Poll,
    Site,
    SiteLink,
)

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
MONTH = "2026-10"
PERIOD = 2_678_400
GAP = 7_200


def local(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A Ho Chi Minh City wall-clock time in 2026, as aware UTC."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=HCM).astimezone(UTC)


STAMP = local(11, 2, 0)

SITES = [
    ("TK", "Thành ủy Tam Kỳ", "district", "TK", None, 0.99),
    ("TK-C01", "Đảng ủy phường An Mỹ", "commune", "TK", "TK", 0.99),
    ("TK-NODATA", "Đảng ủy xã Tam Thăng", "commune", "TK", "TK", 0.98),
    ("HA", "Thành ủy Hội An", "district", "HA", None, 0.99),
]


def _outage(
    site: str, state: str, start: datetime, end: datetime | None, cause: str | None = None
) -> dict[str, Any]:
    return {
        "site": site,
        "state": state,
        "cause": cause,
        "started_at": start,
        "ended_at": end,
        "run_id": "run-1",
        "updated_at": STAMP,
    }


def _polls(target: str, kind: str, first: datetime, every: int, lags: list[float]) -> list[dict[str, Any]]:
    rows = []
    for n, lag in enumerate(lags):
        scheduled = first + timedelta(seconds=every * n)
        rows.append(
            {
                "target": target,
                "kind": kind,
                "scheduled_at": scheduled,
                "started_at": scheduled + timedelta(seconds=lag),
                "duration_seconds": 0.01,
                "success": True,
                "reason": None,
                "run_id": "run-1",
                "on_time": lag <= every / 10,
            }
        )
    return rows


def populate(engine: Engine) -> dict[str, int]:
    """Write the month into a migrated database; returns the ledger ids by name ("TK#6", …)."""
    ids: dict[str, int] = {}
    ledger = {
        "TK#1": _outage("TK", "down", local(9, 30, 22), local(10, 1, 2)),
        "TK#2": _outage("TK", "maintenance", local(10, 5, 1), local(10, 5, 5)),
        "TK#3": _outage("TK", "down", local(10, 5, 2), local(10, 5, 3)),
        "TK#4": _outage("TK", "down", local(10, 10, 8), local(10, 10, 9, 30)),
        "TK#5": _outage("TK", "degraded", local(10, 12, 10), local(10, 12, 16)),
        "TK#6": _outage("TK", "down", local(10, 15, 9), local(10, 15, 10)),
        "TK#7": _outage("TK", "down", local(10, 20, 11), local(10, 20, 13)),
        "TK#8": _outage("TK", "down", local(10, 31, 23), None),
        "TK-C01#1": _outage("TK-C01", "unreachable", local(10, 10, 8, 3), local(10, 10, 9, 30), cause="TK"),
        "TK-C01#2": _outage("TK-C01", "down", local(10, 25, 20), local(10, 26, 8)),
        "HA#sep": _outage("HA", "down", local(9, 10, 8), local(9, 10, 9)),
    }
    with engine.begin() as conn:
        conn.execute(
            insert(Site),
            [
                dict(zip(("code", "name", "kind", "district", "parent", "sla_target"), s, strict=True))
                | {"updated_at": STAMP}
                for s in SITES
            ],
        )
        conn.execute(
            insert(Device),
            [
                {"name": name, "site": site, "address": "198.51.100.1", "role": "router", "upstream": None}
                | {"updated_at": STAMP}
                for name, site in (
                    ("tk-r1", "TK"),
                    ("tkc01-r1", "TK-C01"),
                    ("ha-r1", "HA"),
                    ("nd-r1", "TK-NODATA"),
                )
            ],
        )
        for name, row in ledger.items():
            ids[name] = conn.execute(insert(Outage).returning(Outage.id), row).scalar_one()
        notes = [
            (ids["TK#6"], "Chưa rõ", None, None, local(10, 15, 11)),
            (
                ids["TK#6"],
                "Thay thiết bị định tuyến theo kế hoạch",
                "VNPT-123",
                "maintenance",
                local(10, 16, 9),
            ),
            (ids["TK-C01#1"], "Mất điện trạm huyện Tam Kỳ", None, None, local(10, 10, 10)),
            (ids["HA#sep"], "Tháng trước", "OLD-1", "maintenance", local(9, 11, 9)),
        ]
        conn.execute(
            insert(OutageAnnotation),
            [
                {
                    "outage_id": oid,
                    "cause": cause,
                    "ticket": ticket,
                    "reclassified_as": state,
                    "author": "vanhanh",
                    "created_at": at,
                    "before": "{}",
                    "after": "{}",
                }
                for oid, cause, ticket, state, at in notes
            ],
        )
        conn.execute(
            insert(InstanceRun),
            [
                _run("run-1", local(9, 25, 0), local(10, 20, 12), local(10, 20, 12)),
                _run("run-2", local(10, 20, 14), local(11, 2, 0), None),
            ],
        )
        polls = (
            _polls("tk-r1", "icmp", local(10, 2, 0), 60, [1, 1, 7, 1, 1, 1, 7, 1, 1, 1])
            + _polls("tk-r1", "snmp", local(10, 2, 0), 300, [20, 20, 20])
            + _polls("tk-r1", "icmp", local(9, 30, 23, 59), 60, [30])
            + _polls("tkc01-r1", "icmp", local(10, 3, 0), 300, [20, 20, 40, 20, 20])
            + _polls("ha-r1", "icmp", local(10, 4, 0), 60, [5])
        )
        conn.execute(insert(Poll), polls)
    return ids


def _run(run_id: str, start: datetime, heartbeat: datetime, stopped: datetime | None) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "instance": "nw1",
        "shard": "1/1",
        "hostname": "nw1",
        "pid": 1,
        "version": "0.1.0",
        "started_at": start,
        "heartbeat_at": heartbeat,
        "stopped_at": stopped,
    }


# Links (only with populate_links): TK has one link (no link rows), TK-C01 two.
# VNPT (tkc01-r1/ge-0/0/0), the link ledger:
#  a. down     09-30 23:00 → 10-01 01:00   3,600 s in the month
#  b. down     10-10 08:00 → 10:00         08:03–09:30 is the site's unreachable: 180 + 1,800 = 1,980 s
#  c. degraded 10-12 10:00 → 12:00         7,200 s
#  d. down     10-20 11:00 → 13:00         12:00–13:00 is the netwatch gap: 3,600 s
#  e. down     10-25 20:00 → 10-26 08:00   43,200 s (both links down: the site's own outage)
#  down 52,380 s, 4 outages, longest 43,200; unknown 7,200 and unreachable 5,220 (the site's);
#  up 2,678,400 − 52,380 − 7,200 − 5,220 − 7,200 = 2,606,400.
# Viettel (tkc01-r2): down 09-10 → 09-11 (September, ignored); down 10-25 20:00 → 10-26 08:00
#  (43,200 s); down 10-31 23:30 → open (1,800 s): down 45,000 s, 2 outages, longest 43,200;
#  up 2,678,400 − 45,000 − 7,200 − 5,220 = 2,620,980.
LINK_VNPT = "tkc01-r1/ge-0/0/0"
LINK_VIETTEL = "tkc01-r2"


def populate_links(engine: Engine) -> None:
    """Add the links above to a database :func:`populate` has filled."""
    links = [
        ("TK", "tk-r1", "tk-r1", None, 0),
        ("TK-C01", LINK_VNPT, "VNPT", "ge-0/0/0", 0),
        ("TK-C01", LINK_VIETTEL, "Viettel", None, 1),
    ]

    def down(link: str, state: str, start: datetime, end: datetime | None) -> dict[str, Any]:
        return _outage("TK-C01", state, start, end) | {"link": link}

    ledger = [
        down(LINK_VNPT, "down", local(9, 30, 23), local(10, 1, 1)),
        down(LINK_VNPT, "down", local(10, 10, 8), local(10, 10, 10)),
        down(LINK_VNPT, "degraded", local(10, 12, 10), local(10, 12, 12)),
        down(LINK_VNPT, "down", local(10, 20, 11), local(10, 20, 13)),
        down(LINK_VNPT, "down", local(10, 25, 20), local(10, 26, 8)),
        down(LINK_VIETTEL, "down", local(9, 10, 0), local(9, 11, 0)),
        down(LINK_VIETTEL, "down", local(10, 25, 20), local(10, 26, 8)),
        down(LINK_VIETTEL, "down", local(10, 31, 23, 30), None),
        _outage("TK", "down", local(10, 3, 0), local(10, 3, 1)) | {"link": "tk-r1"},
    ]
    with engine.begin() as conn:
        conn.execute(
            insert(SiteLink),
            [
                {
                    "site": site,
                    "link": link,
                    "name": name,
                    "device": link.split("/")[0],
                    "interface": interface,
                    "position": position,
                    "contracted_bps": None,
                    "updated_at": STAMP,
                }
                for site, link, name, interface, position in links
            ],
        )
        conn.execute(insert(LinkOutage), ledger)
