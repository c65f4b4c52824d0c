"""The ``snmp`` collector kind: read what the chosen profiles need from one agent, decode it, report it.

One poll walks the dynamic columns of every table in one multi-column walk, and reads the profiles'
scalars (always with sysUpTime) in that walk's first request, as GETBULK non-repeaters: one request per
poll of a small device, where a GET of their own made two. Static columns (labels such as
ifName/ifAlias/ifDescr, ifType, hrStorageDescr…) are cached per target and re-walked only every
``static_refresh_seconds``, when sysUpTime goes back (a reboot renumbers interfaces: the dynamic columns
are then read again too) or when a walk shows rows the cache does not know. Where the interface filter
keeps a small part of a big table, the kept rows are read with GET instead of walking the table. Columns
that are only a later source (ifInOctets behind ifHCInOctets, ifSpeed behind ifHighSpeed) are read on the
first poll after each static refresh and then skipped while the first sources answer every row; a poll
that finds a row needing one reads it at once.

Failure is a value: an :class:`SnmpError` becomes ``CollectResult.failed(reason, message)`` with
reason ``timeout``, ``auth``, ``protocol``, ``loop``, ``too_many_rows`` or ``agent`` (and whatever
was decoded before the error), an unknown credential or profile ``config``. A device that lacks a
profile's tables just yields nothing for them.

``CollectResult.details`` (read by the rates step and the exporter):

- ``counter_bits``: ``{(name, labels): 32 | 64}`` for every counter measurement — where the raw
  device counter wraps (``2**bits``).
- ``counter_scale``: ``{(name, labels): factor}`` for counters reported scaled (Brocade words × 4);
  the wrap in reported units is ``2**bits × factor``. Absent keys mean 1.
- ``uptime_ticks``: sysUpTime in hundredths of a second, or None; going back means the agent restarted
  and every counter restarted with it.
- ``discontinuity``: ``{(name, labels): ticks}``, the row's ifCounterDiscontinuityTime where the device
  has it; a change means that series' counters restarted (a line card reset, a cleared counter).
- ``sample_monotonic``: ``time.monotonic()`` at the middle of the walk that read the counters, so a
  rate divides by the time between readings, not between poll ends.
- ``info``: ``{"sysname", "sysdescr", "sysobjectid"}`` labels for the device's info series.
- ``static_refreshed``: whether this poll re-walked the static columns.
- ``skipped_columns``: how many fallback columns this poll did not read (see above).
- ``decode_problems``: how many values were of the wrong type and skipped; ``decode_messages`` a few.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from collectors.base import (
    BackoffParams,
    CollectContext,
    CollectorParams,
    CollectorSpec,
    CollectResult,
    Target,
)
from collectors.snmp.client import SYS_UPTIME, Riders, SnmpClient, SnmpError, Value
from collectors.snmp.credentials import SnmpCredentials, SnmpTarget
from collectors.snmp.decode import (
    InterfaceFilter,
    LabelMemo,
    decode,
    dynamic_columns,
    fallback_columns,
    scalar_oids,
    selected_rows,
    static_columns,
)
from collectors.snmp.profiles import (
    SHIPPED_PROFILE_DIR,
    Profile,
    ProfileSet,
    load_profiles,
    shipped_profile_names,
)

__all__ = [
    "IANA_IF_TYPES",
    "SPEC",
    "InterfaceFilterParams",
    "SnmpParams",
    "SnmpResources",
    "collect",
    "open_snmp_resources",
]

# The IANAifType names operators meet most; any other type is given by its number.
IANA_IF_TYPES: Mapping[str, int] = {
    "other": 1,
    "ethernetCsmacd": 6,
    "iso88023Csmacd": 7,
    "ds1": 18,
    "e1": 19,
    "propPointToPointSerial": 22,
    "ppp": 23,
    "softwareLoopback": 24,
    "frameRelay": 32,
    "atm": 37,
    "sonet": 39,
    "propVirtual": 53,
    "fibreChannel": 56,
    "fastEther": 62,
    "ieee80211": 71,
    "adsl": 94,
    "sdsl": 96,
    "vdsl": 97,
    "gigabitEthernet": 117,
    "tunnel": 131,
    "l2vlan": 135,
    "l3ipvlan": 136,
    "ieee8023adLag": 161,
    "mpls": 166,
    "bridge": 209,
    "gpon": 250,
    "vdsl2": 251,
}
# GET the kept rows instead of walking when the filter keeps at most this share of a table and the
# GETs stay below this many varbinds: walking 500 ports to keep 4 is what operators complain about.
_GET_SHARE = 0.5
_GET_MAX_VARBINDS = 2_000


class InterfaceFilterParams(BaseModel):
    """Which interfaces of interface tables (IF-MIB) to report; empty lists keep all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    include: list[str] = Field(
        default_factory=list, description="Globs on ifName or ifDescr; when set, only matching interfaces."
    )
    exclude: list[str] = Field(default_factory=list, description="Globs on ifName or ifDescr to leave out.")
    types: list[int | str] = Field(
        default_factory=list,
        description="IANAifType numbers or names (ethernetCsmacd, ieee8023adLag…); when set, only these.",
    )
    exclude_types: list[int | str] = Field(
        default_factory=list, description="IANAifType numbers or names to leave out (softwareLoopback…)."
    )
    oper_up_only: bool = Field(default=False, description="Report only interfaces whose ifOperStatus is up.")

    @field_validator("types", "exclude_types")
    @classmethod
    def _known_types(cls, value: list[int | str]) -> list[int | str]:
        for item in value:
            if isinstance(item, str) and item not in IANA_IF_TYPES:
                raise ValueError(f"unknown interface type {item!r}; give its IANAifType number instead")
            if isinstance(item, int) and not 1 <= item <= 2_147_483_647:
                raise ValueError("IANAifType numbers are positive")
        return value

    def to_filter(self) -> InterfaceFilter:
        """The decoder's filter."""

        def numbers(items: list[int | str]) -> frozenset[int]:
            return frozenset(IANA_IF_TYPES[i] if isinstance(i, str) else i for i in items)

        return InterfaceFilter(
            include=tuple(self.include),
            exclude=tuple(self.exclude),
            types=numbers(self.types),
            exclude_types=numbers(self.exclude_types),
            oper_up_only=self.oper_up_only,
        )


class SnmpParams(CollectorParams, BackoffParams):
    """Poll one SNMP agent with the chosen device profiles; an agent that stops answering is polled
    less often (``backoff_after``, ``backoff_max``) until it answers again or its device answers ping."""

    kind: Literal["snmp"] = "snmp"
    interval: float = Field(default=60.0, gt=0, le=86_400, description="Seconds between two polls.")
    timeout: float = Field(default=2.0, gt=0, le=60, description="Seconds to wait for each SNMP answer.")
    retries: int = Field(default=1, ge=0, le=10, description="Resends of a request that got no answer.")
    credential: str = Field(description="Name of an entry under credentials: (v2c community or v3 user).")
    port: int = Field(
        default=161, ge=1, le=65_535, description="UDP port of the agent (the device's port wins)."
    )
    profiles: list[str] = Field(
        default_factory=lambda: ["system", "if-mib"],
        min_length=1,
        description="Device profiles to read: system, if-mib, host-resources, ucd-snmp, ups-mib, san.",
    )
    interfaces: InterfaceFilterParams = Field(
        default_factory=InterfaceFilterParams, description="Which interfaces to report (big switches)."
    )
    max_repetitions: int = Field(default=25, ge=1, le=200, description="GETBULK max-repetitions.")
    static_refresh_seconds: float = Field(
        default=3600.0, ge=0, le=7 * 86_400, description="How long cached labels (ifName, ifAlias…) are kept."
    )

    @field_validator("profiles")
    @classmethod
    def _known_profiles(cls, value: list[str]) -> list[str]:
        known = shipped_profile_names()
        for name in value:
            if name not in known:
                raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(sorted(known))}")
        if len(set(value)) != len(value):
            raise ValueError("a profile is listed twice")
        return value


@dataclass(slots=True)
class _StaticCache:
    columns: dict[str, dict[str, Value]]
    read_at: float
    uptime_ticks: int | None
    labels: LabelMemo = field(default_factory=dict)
    """Row labels decoded from ``columns``: computed on the first poll after a refresh, then reused."""
    skip: frozenset[str] = frozenset()
    """Fallback columns the last complete poll did not need: not read until one is (ifInOctets,
    ifOutOctets and ifSpeed: a quarter of an interface table's varbinds on a device with 64-bit
    counters and ifHighSpeed)."""


@dataclass(slots=True)
class SnmpResources:
    """What every SNMP poll shares: one client (one engine), credentials by name, loaded profiles.

    The daemon opens it once (:func:`open_snmp_resources`), installs it with ``ctx.set("snmp", …)``
    and closes it at shutdown. It also holds the per-target cache of static columns.
    """

    client: SnmpClient
    credentials: Mapping[str, SnmpCredentials]
    profiles: ProfileSet
    static_cache: dict[tuple[Any, ...], _StaticCache] = field(default_factory=dict)

    async def close(self) -> None:
        """Close the client's engine and socket."""
        self.client.close()


def open_snmp_resources(
    credentials: Mapping[str, SnmpCredentials],
    profile_dirs: Sequence[str | Path] = (SHIPPED_PROFILE_DIR,),
    *,
    max_in_flight: int = 64,
) -> SnmpResources:
    """Load the profiles and open one client for every SNMP poll.

    Raises:
        ProfileError: a profile file is invalid (``file:line: field: message`` per problem).
    """
    profiles = load_profiles(profile_dirs)
    return SnmpResources(SnmpClient(max_in_flight=max_in_flight), dict(credentials), profiles)


async def collect(target: Target, params: SnmpParams, ctx: CollectContext) -> CollectResult:
    """One poll of ``target`` with ``params.profiles``; failure comes back as a value."""
    resources = ctx.get("snmp")
    if not isinstance(resources, SnmpResources):
        return CollectResult.failed(
            "config", "no SNMP resources are open (the daemon installs them at start)"
        )
    credentials = resources.credentials.get(params.credential)
    if credentials is None:
        return CollectResult.failed("config", f"no credential is named {params.credential!r}")
    missing = [p for p in params.profiles if p not in resources.profiles]
    if missing:
        return CollectResult.failed("config", f"no profile is named {', '.join(map(repr, missing))}")
    try:
        agent = SnmpTarget(
            target.address,
            credentials,
            port=target.port or params.port,
            timeout=params.timeout,
            retries=params.retries,
        )
    except ValueError as exc:
        return CollectResult.failed("config", str(exc))
    profiles = [resources.profiles[p] for p in params.profiles]
    return await _Poll(resources, target, params, agent, profiles).run()


class _Poll:
    """One poll of one agent."""

    def __init__(
        self,
        resources: SnmpResources,
        target: Target,
        params: SnmpParams,
        agent: SnmpTarget,
        profiles: list[Profile],
    ) -> None:
        self.client = resources.client
        self.cache = resources.static_cache
        self.key = (target.key, agent.address, agent.port, tuple(params.profiles))
        self.params = params
        self.agent = agent
        self.profiles = profiles
        self.tables = [t for p in profiles for t in p.tables]
        self.filter = params.interfaces.to_filter()
        self.errors: list[SnmpError] = []
        self.refreshed = False
        self.riders = Riders(sorted({SYS_UPTIME}.union(*(scalar_oids(p) for p in profiles))))
        """The scalars, read in the poll's first walk request (one request per poll, not two)."""

    async def run(self) -> CollectResult:
        riders = self.riders
        static = await self._static()
        if not riders.answered and self.errors:
            return self._unanswered()
        cached = self.cache.get(self.key)
        skip = cached.skip if cached is not None and cached.columns is static else frozenset()
        walk_started = time.monotonic()
        dynamic = await self._dynamic(static, skip)
        if not riders.answered:
            if self.errors:
                return self._unanswered()
            try:  # nothing was walked (no tables): the scalars' own GET
                riders.values.update(await self.client.get(self.agent, riders.oids))
            except SnmpError as exc:
                return CollectResult.failed(exc.reason, str(exc))
        scalars = riders.values
        found = scalars.get(SYS_UPTIME)
        uptime = found.value if found is not None and isinstance(found.value, int) else None
        if self._rebooted(static, uptime):
            # A restarted agent may have renumbered its rows: labels and rows are read again.
            static = await self._static(force=True)
            walk_started = time.monotonic()
            dynamic = await self._dynamic(static, frozenset())
            skip = frozenset()
        # Counters were read during the walk, not when the poll (with its static refresh) ended.
        sample_monotonic = (walk_started + time.monotonic()) / 2
        if self._new_rows(static, dynamic):
            static = await self._static(force=True)
        if self.refreshed:
            self.cache[self.key].uptime_ticks = uptime
        cached = self.cache.get(self.key)
        memo = cached.labels if cached is not None and cached.columns is static else None
        decoded = decode(self.profiles, scalars, {**static, **dynamic}, self.filter, label_memo=memo)
        needed = decoded.fallbacks & skip
        if needed:
            # A row's first source gave nothing (a new interface without 64-bit counters, a speed
            # gone to 0): read what was skipped now rather than leave the series out of this poll.
            dynamic.update(await self._dynamic(static, frozenset(), only=needed))
            skip -= needed
            decoded = decode(self.profiles, scalars, {**static, **dynamic}, self.filter, label_memo=memo)
        if cached is not None and cached.columns is static and not self.errors:
            cached.skip = self._fallbacks() - decoded.fallbacks
        details = {
            "counter_bits": dict(decoded.counter_bits),
            "counter_scale": dict(decoded.counter_scale),
            "uptime_ticks": uptime,
            "sample_monotonic": sample_monotonic,
            "discontinuity": dict(decoded.discontinuity),
            "info": dict(decoded.info),
            "static_refreshed": self.refreshed,
            "skipped_columns": len(skip),
            "decode_problems": decoded.problem_count,
            "decode_messages": decoded.problems,
        }
        if self.errors:
            first = self.errors[0]
            return CollectResult(
                success=False,
                measurements=decoded.measurements,
                error=str(first),
                reason=first.reason,
                details=details,
            )
        return CollectResult(success=True, measurements=decoded.measurements, details=details)

    def _unanswered(self) -> CollectResult:
        """The poll's first request got no answer (timeout, auth…): failed, as its scalars' GET was."""
        first = self.errors[0]
        return CollectResult.failed(first.reason, str(first))

    async def _static(self, *, force: bool = False) -> dict[str, dict[str, Value]]:
        """The static columns: cached, or walked when missing, older than the refresh, or ``force``."""
        wanted = sorted(set().union(*(static_columns(t) for t in self.tables)))
        if not wanted:
            return {}
        cached = self.cache.get(self.key)
        if (
            cached is not None
            and not force
            and time.monotonic() - cached.read_at < self.params.static_refresh_seconds
        ):
            return cached.columns
        columns = await self._walk(wanted)
        self.cache[self.key] = _StaticCache(columns, time.monotonic(), None)
        self.refreshed = True
        return columns

    def _rebooted(self, static: Mapping[str, Mapping[str, Value]], uptime: int | None) -> bool:
        """Whether sysUpTime went back since the cached static columns were read (a restart), noting
        this poll's sysUpTime in the cache."""
        cached = self.cache.get(self.key)
        if cached is None or cached.columns is not static or self.refreshed:
            return False
        went_back = uptime is not None and cached.uptime_ticks is not None and uptime < cached.uptime_ticks
        cached.uptime_ticks = uptime
        return went_back

    def _fallbacks(self) -> frozenset[str]:
        return frozenset().union(*(fallback_columns(t) for t in self.tables))

    async def _dynamic(
        self,
        static: Mapping[str, Mapping[str, Value]],
        skip: frozenset[str],
        only: frozenset[str] | None = None,
    ) -> dict[str, dict[str, Value]]:
        """Read the dynamic columns but ``skip`` (or just those in ``only``): walked, or GET for the
        few rows a filter keeps of a big table."""
        walk: set[str] = set()
        gets: list[str] = []
        got_columns: list[str] = []
        known_rows = 0
        for table in self.tables:
            columns = dynamic_columns(table) - skip
            if only is not None:
                columns &= only
            if not columns:
                continue
            rows = selected_rows(table, static, self.filter)
            total = len({r for c in static_columns(table) for r in static.get(c, {})})
            if (
                rows is not None
                and len(rows) <= total * _GET_SHARE
                and len(rows) * len(columns) <= _GET_MAX_VARBINDS
            ):
                gets += [f"{c}.{r}" for c in sorted(columns) for r in sorted(rows)]
                got_columns += columns
            else:
                walk |= columns
                known_rows = max(known_rows, total)
        result = await self._walk(sorted(walk), known_rows) if walk else {}
        if gets:
            try:
                got = await self.client.get(self.agent, gets)
            except SnmpError as exc:
                self.errors.append(exc)
                got = {}
            for column in got_columns:
                into = result.setdefault(column, {})
                start = column + "."
                for oid, value in got.items():
                    if oid.startswith(start):
                        into[oid[len(start) :]] = value
        return result

    async def _walk(self, columns: list[str], known_rows: int = 0) -> dict[str, dict[str, Value]]:
        # With the row count known (the static cache), one more repetition than rows finishes every
        # column in one request without reading rows past the table's end: a 17-port switch answered
        # 25 repetitions of ~11 columns, a third of them spilled into the next column, to be decoded
        # and thrown away. More rows than known (a new interface) just take another request.
        reps = self.params.max_repetitions
        if known_rows:
            reps = min(reps, known_rows + 1)
        riders = None if self.riders.answered else self.riders
        try:
            walked = await self.client.walk(self.agent, columns, max_repetitions=reps, riders=riders)
        except SnmpError as exc:
            self.errors.append(exc)
            walked = {c: dict(v) for c, v in exc.partial.items()}
        # The walk's results are built afresh for this poll: no copy needed.
        return {c: walked.get(c) or {} for c in columns}

    def _new_rows(
        self, static: Mapping[str, Mapping[str, Value]], dynamic: Mapping[str, Mapping[str, Value]]
    ) -> bool:
        """Whether a walked table shows rows the static cache does not know (interfaces added)."""
        if self.refreshed or self.errors:
            return False
        for table in self.tables:
            known = {r for c in static_columns(table) for r in static.get(c, {})}
            if not known:
                continue
            for source in (s for m in table.metrics for s in m.sources):
                rows = dynamic.get(source.oid)
                if rows and not set(rows) <= known:
                    return True
        return False


SPEC: CollectorSpec[SnmpParams] = CollectorSpec(
    kind="snmp",
    params_model=SnmpParams,
    collect=collect,
    description="SNMP polls by device profile: interfaces, host resources, UPS, SAN ports.",
)
