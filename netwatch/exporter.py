"""Prometheus exposition: one custom collector that reads the latest state at scrape time.

It computes nothing that the pipeline has not already decided; it only turns state into metric
families. Each instance registers in its own ``CollectorRegistry`` (one per daemon, one per test).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from collectors.base import CollectResult
from netwatch.config.inventory import Inventory, Site, link_interfaces
from netwatch.exposition import (
    KeptBlocks,
    LabelTexts,
    SeriesTexts,
    SteppedRegistry,
    TextFamily,
    go_float,
    label_text,
)
from netwatch.gcpolicy import STATS as GC_STATS
from netwatch.health import State
from netwatch.sitehealth import SiteState, SiteStatus
from netwatch.state import JobState, LatestState

DEVICE_LABELS = ("site", "district", "device")
_JOBS_PER_STEP = 500
"""Jobs between two pause points of a scrape for the poll and ICMP families (a few ms)."""
_SNMP_JOBS_PER_STEP = 10
"""SNMP devices between two pause points: each writes ~10 samples per interface."""
RATE_METRICS = {"if_in_octets": "netwatch_if_in_bps", "if_out_octets": "netwatch_if_out_bps"}
ICMP_RTT_STATS = (
    ("min", "icmp_rtt_min_seconds"),
    ("avg", "icmp_rtt_avg_seconds"),
    ("max", "icmp_rtt_max_seconds"),
)


class StorageStats(Protocol):
    """What the exporter reads of the storage writer."""

    @property
    def queue_length(self) -> int: ...

    @property
    def written_total(self) -> int: ...

    @property
    def dropped_total(self) -> int: ...

    @property
    def spool_bytes(self) -> int: ...


class NetwatchCollector(Collector):
    """Yields every netwatch metric family from a :class:`LatestState`."""

    def __init__(self, state: LatestState, storage: StorageStats | None = None) -> None:
        self._state = state
        self._storage = storage
        self._label_texts = LabelTexts()
        self._blocks: tuple[Inventory, KeptBlocks] | None = None

    def describe(self) -> list[Metric]:
        """Nothing to describe up front: families depend on the inventory (avoids a scrape at
        registration)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Metric families for one scrape."""
        return (family for family in self.collect_steps() if family is not None)

    def collect_steps(self, *, gzip: bool = False) -> Iterator[Metric | None]:
        """The families of :meth:`collect`, with ``None`` between jobs where a renderer on the
        event loop may let polls run (:func:`netwatch.exposition.render_stepped`); with ``gzip``,
        the text families compress what they hold at each of those steps."""
        # A shard holds other shards' jobs too (restored health, reloads): export only its own.
        owned = self._state.owned_devices
        jobs = [j for j in list(self._state.jobs.values()) if owned is None or j.job.target.key in owned]
        families = _Families(gzip=gzip)
        blocks = self._kept_blocks()
        yield from self._poll_families(jobs, families)
        yield from self._icmp_families([j for j in jobs if j.job.kind == "icmp"], families)
        yield from self._snmp_families([j for j in jobs if j.job.kind == "snmp"], families, blocks)
        self._label_texts.end_scrape()
        blocks.end_scrape()
        yield from self._inventory_families(families)
        self._site_families(families)
        yield from families.all()
        yield from self._self_families()

    @staticmethod
    def _device_labels(js: JobState) -> list[str]:
        labels = js.job.target.labels
        return [labels.get(name, "") for name in DEVICE_LABELS]

    def _texts(self, js: JobState) -> SeriesTexts:
        values = self._device_labels(js)
        return self._label_texts.device(tuple(values), dict(zip(DEVICE_LABELS, values, strict=True)))

    def _poll_families(self, jobs: list[JobState], families: _Families) -> Iterator[None]:
        up = families.family("netwatch_up", "gauge")
        target_up = families.family("netwatch_target_up", "gauge")
        duration = families.family("netwatch_poll_duration_seconds", "gauge")
        for n, js in enumerate(jobs, 1):
            labels = self._texts(js)[(("collector", js.job.kind),)]
            if js.last_result is not None:
                up.add(labels, 1.0 if js.last_result.success else 0.0)
                duration.add(labels, js.last_result.duration)
            if js.resume_at is not None and js.last_scheduled_at is not None:
                families.family("netwatch_poll_backoff_seconds", "gauge").add(
                    labels, (js.resume_at - js.last_scheduled_at).total_seconds()
                )
            if js.health.state is not State.UNKNOWN:
                target_up.add(labels, 1.0 if js.health.is_up else 0.0)
            if n % _JOBS_PER_STEP == 0:
                families.squeeze()
                yield None

    def _icmp_families(self, jobs: list[JobState], families: _Families) -> Iterator[None]:
        rtt = families.family("netwatch_icmp_rtt_seconds", "gauge")
        jitter = families.family("netwatch_icmp_jitter_seconds", "gauge")
        loss = families.family("netwatch_icmp_loss_ratio", "gauge")
        sent = families.family("netwatch_icmp_packets_sent", "counter")
        received = families.family("netwatch_icmp_packets_received", "counter")
        for n, js in enumerate(jobs, 1):
            texts = self._texts(js)
            labels = texts[()]
            sent.add(labels, js.counters.get("icmp_packets_sent", 0.0))
            received.add(labels, js.counters.get("icmp_packets_received", 0.0))
            result = js.last_result
            if result is not None:
                for stat, name in ICMP_RTT_STATS:
                    value = result.value(name)
                    if value is not None:
                        rtt.add(texts[(("stat", stat),)], value)
                if (value := result.value("icmp_jitter_seconds")) is not None:
                    jitter.add(labels, value)
                if (value := result.value("icmp_loss_ratio")) is not None:
                    loss.add(labels, value)
            if n % _JOBS_PER_STEP == 0:
                families.squeeze()
                yield None

    def _kept_blocks(self) -> KeptBlocks:
        """The SNMP devices' kept samples (see :class:`KeptBlocks`), for the current inventory: a
        reload may change a device's labels or contracted rates, so it starts afresh. A scrape that
        began before the reload finishes with the old blocks, which go with it."""
        inventory = self._state.inventory
        if self._blocks is None or self._blocks[0] is not inventory:
            self._blocks = (inventory, KeptBlocks())
        return self._blocks[1]

    def _snmp_families(self, jobs: list[JobState], families: _Families, blocks: KeptBlocks) -> Iterator[None]:
        contracted = self._contracted_interfaces()
        for n, js in enumerate(jobs, 1):
            result = js.last_result
            # A device not polled since the last scrape has the same samples: its kept text.
            if result is not None and not blocks.replay(js.job.key, js.recorded, families):
                with blocks.writing(js.job.key, js.recorded, families):
                    self._snmp_job(js, result, families, contracted)
            if n % _SNMP_JOBS_PER_STEP == 0:
                families.squeeze()
                yield None

    def _snmp_job(
        self,
        js: JobState,
        result: CollectResult,
        families: _Families,
        contracted: dict[tuple[str, str], float],
    ) -> None:
        # Most of a scrape's samples: written as text, each label set's text kept between scrapes
        # (see netwatch.exposition).
        texts = self._texts(js)
        measured = families.measured
        families.family("netwatch_snmp_poll_duration_seconds", "gauge").add(texts[()], result.duration)
        for m in result.measurements:
            if m.kind == "gauge" or m.kind == "info":
                measured(m.name, "gauge").add(texts[m.labels], m.value)
            if m.name == "if_speed_bps":
                ifname = next((v for k, v in m.labels if k == "ifname"), "")
                bps = contracted.get((js.job.target.key, ifname))
                if bps is not None:
                    families.family("netwatch_if_contracted_bps", "gauge").add(texts[m.labels], bps)
        # The loop of a scrape (six counters per interface): the book's columns read in place and
        # each line written straight into its family's buffer, no call per sample but go_float.
        book = js.book
        scales = book.scales
        buffers = families.counter_buffers
        columns = book.columns
        for slot, (name, series, total, rate) in enumerate(
            zip(book.names, book.labels, columns.total, columns.rate, strict=True)
        ):
            scale = 1.0 if scales is None else scales[slot]
            labels = texts[series]
            out = buffers.get(name)
            if out is None:
                out = families.counter_buffer(name)
            out.text += f"{out.sample}{labels} {go_float(total * scale)}\n".encode()
            if rate == rate and out.rate_family is not None:  # NaN: that reading gave no rate
                text = out.rate_text
                if text is None:
                    text = families.rate_buffer(out)
                text += f"{out.rate_sample}{labels} {go_float(rate * scale * 8)}\n".encode()

    def _contracted_interfaces(self) -> dict[tuple[str, str], float]:
        return {
            (device, ifname): bps
            for device, interfaces in link_interfaces(self._state.inventory).items()
            for ifname, bps in interfaces.items()
            if bps is not None
        }

    def _inventory_families(self, families: _Families) -> Iterator[None]:
        # Written as text like the interface families: prometheus_client took about 25 µs a sample
        # (label names validated and escaped each time), 0.25 s of the loop for 10,000 devices.
        inventory = self._state.inventory
        site_info = families.family("netwatch_site_info", "gauge")
        for site in self._owned_sites():
            names = {
                "site": site.code,
                "district": site.district,
                "province": inventory.province.code,
                "name": site.name,
                "kind": site.kind,
                "parent": site.parent or "",
            }
            site_info.add(label_text(names), 1.0)
        device_info = families.family("netwatch_device_info", "gauge")
        system = self._system_info()
        owned = self._state.owned_devices
        for n, device in enumerate(inventory.devices.values(), 1):
            if owned is not None and device.name not in owned:
                continue
            site = inventory.sites[device.site]
            sysname, sysdescr = system.get(device.name, ("", ""))
            names = {
                "site": site.code,
                "district": site.district,
                "device": device.name,
                "address": device.address,
                "role": device.role,
                "sysname": sysname,
                "sysdescr": sysdescr,
            }
            device_info.add(label_text(names), 1.0)
            if n % _JOBS_PER_STEP == 0:
                families.squeeze()
                yield None

    def _owned_sites(self) -> list[Site]:
        """The sites this instance exports: with ``--shard K/N`` its own, so that Prometheus
        scraping every shard gets one series per site."""
        owned = self._state.owned_sites
        sites = self._state.inventory.sites.values()
        return [site for site in sites if owned is None or site.code in owned]

    def _system_info(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for js in list(self._state.jobs.values()):
            info = js.last_result.details.get("info") if js.last_result is not None else None
            if js.job.kind == "snmp" and isinstance(info, dict):
                out[js.job.target.key] = (str(info.get("sysname") or ""), str(info.get("sysdescr") or ""))
        return out

    def _site_families(self, families: _Families) -> None:
        site_up = families.family("netwatch_site_up", "gauge")
        site_state = families.family("netwatch_site_state", "gauge")
        flapping = families.family("netwatch_site_flapping", "gauge")
        availability = families.family("netwatch_site_availability_ratio", "gauge")
        downtime = families.family("netwatch_site_downtime_seconds", "gauge")
        statuses = dict(self._state.sites)
        months = self._state.month_figures
        for site in self._owned_sites():
            status = statuses.get(site.code) or SiteStatus()
            names = {"site": site.code, "district": site.district}
            labels = label_text(names)
            site_up.add(labels, 1.0 if status.state in (SiteState.UP, SiteState.DEGRADED) else 0.0)
            for state in SiteState:
                site_state.add(
                    label_text({**names, "state": state.value}), 1.0 if status.state is state else 0.0
                )
            flapping.add(labels, 1.0 if status.flapping else 0.0)
            month = months.get(site.code)
            if month is not None:
                monthly = label_text({**names, "period": "month"})
                if month.availability is not None:
                    availability.add(monthly, month.availability)
                downtime.add(monthly, month.down_seconds)

    def _self_families(self) -> Iterator[Metric]:
        state = self._state
        errors = CounterMetricFamily(
            "netwatch_poll_errors", "Failed polls by collector and reason.", labels=["collector", "reason"]
        )
        for (collector, reason), count in sorted(state.poll_errors.items()):
            errors.add_metric([collector, reason], count)
        yield errors
        backed_off = CounterMetricFamily(
            "netwatch_polls_backed_off",
            "Poll slots left out because the target does not answer (backoff_after, backoff_max).",
            labels=["collector"],
        )
        for collector, count in sorted(state.backed_off_total.items()):
            backed_off.add_metric([collector], count)
        yield backed_off
        lag = HistogramMetricFamily(
            "netwatch_poll_lag_seconds", "Actual start of a poll minus its scheduled start."
        )
        lag.add_metric([], state.lag.cumulative(), sum_value=state.lag.total)
        yield lag
        loop_lag = HistogramMetricFamily(
            "netwatch_event_loop_lag_seconds",
            "How late the polling loop woke up from a 0.1 s sleep: how long polls waited behind it.",
        )
        loop_lag.add_metric([], state.loop_lag.cumulative(), sum_value=state.loop_lag.total)
        yield loop_lag
        yield from _collector_families()
        yield CounterMetricFamily("netwatch_polls", "Polls run.", value=state.polls_total)
        yield CounterMetricFamily(
            "netwatch_polls_late",
            "Polls that started more than a tenth of their interval late.",
            value=state.polls_late_total,
        )
        yield CounterMetricFamily(
            "netwatch_poll_misfires",
            "Poll slots skipped (the previous run still going, or the loop stalled).",
            value=state.misfires_total,
        )
        yield CounterMetricFamily(
            "netwatch_clock_steps",
            "Wall-clock steps seen (NTP or an operator setting the clock); each one realigned all polls.",
            value=state.clock_steps_total,
        )
        yield GaugeMetricFamily(
            "netwatch_config_last_reload_successful",
            "1 if the last configuration load succeeded.",
            value=1.0 if state.config_last_reload_successful else 0.0,
        )
        disabled = GaugeMetricFamily(
            "netwatch_collector_disabled",
            "1 for a collector kind that could not start (e.g. no ICMP permission).",
            labels=["collector"],
        )
        for kind in sorted(state.disabled_kinds):
            disabled.add_metric([kind], 1.0)
        yield disabled
        failed = CounterMetricFamily(
            "netwatch_notifications_failed",
            "Notifications given up on after retries, by channel.",
            labels=["channel"],
        )
        for channel, count in sorted(dict(state.notifications_failed).items()):
            failed.add_metric([channel], count)
        yield failed
        if self._storage is not None:
            yield GaugeMetricFamily(
                "netwatch_storage_queue_length",
                "Samples waiting to be written.",
                value=self._storage.queue_length,
            )
            yield CounterMetricFamily(
                "netwatch_samples_written", "Rows written to the database.", value=self._storage.written_total
            )
            yield CounterMetricFamily(
                "netwatch_samples_dropped",
                "Rows dropped because the write queue was full.",
                value=self._storage.dropped_total,
            )
            yield GaugeMetricFamily(
                "netwatch_storage_spool_bytes",
                "Bytes of rows waiting on disk for the database (the spool).",
                value=self._storage.spool_bytes,
            )


def _collector_families() -> Iterator[Metric]:
    """The cyclic garbage collector's passes on the polling loop (see netwatch.gcpolicy)."""
    runs = CounterMetricFamily(
        "netwatch_gc_collections", "Garbage collections run by netwatch's schedule.", labels=["generation"]
    )
    seconds = CounterMetricFamily(
        "netwatch_gc_seconds",
        "Seconds the polling loop spent in garbage collections (a pause for every poll).",
        labels=["generation"],
    )
    collected = CounterMetricFamily(
        "netwatch_gc_collected_objects",
        "Unreachable objects (reference cycles) the garbage collections found and freed.",
        labels=["generation"],
    )
    for generation in range(3):
        runs.add_metric([str(generation)], GC_STATS.collections[generation])
        seconds.add_metric([str(generation)], GC_STATS.seconds[generation])
        collected.add_metric([str(generation)], GC_STATS.collected[generation])
    yield from (runs, seconds, collected)


class _CounterOut:
    """Where one counter measurement's samples go: its family's buffer and sample name, and for
    octet counters the bits-per-second family (its buffer made on the first rate, as before)."""

    __slots__ = ("rate_family", "rate_sample", "rate_text", "sample", "text")

    def __init__(self, counters: TextFamily, rate_family: str | None) -> None:
        self.text = counters.text
        self.sample = counters.sample_name
        self.rate_family = rate_family
        self.rate_text: bytearray | None = None
        self.rate_sample = ""


class _Families:
    """Metric families written sample by sample as text (see netwatch.exposition), in the order
    they are first used."""

    DOCS: dict[str, str] = {  # noqa: RUF012
        "netwatch_up": "1 if the last poll of this target by this collector succeeded.",
        "netwatch_target_up": (
            "Health verdict after the down/up rounds rule: 1 up or degraded, 0 down (absent while unknown)."
        ),
        "netwatch_poll_duration_seconds": "Duration of the last poll.",
        "netwatch_poll_backoff_seconds": (
            "While a target that does not answer is polled less often: seconds from last poll to next."
        ),
        "netwatch_icmp_rtt_seconds": "Round-trip time of the last round.",
        "netwatch_icmp_jitter_seconds": "Mean difference of consecutive RTTs in the last round.",
        "netwatch_icmp_loss_ratio": "Share of probes lost in the last round.",
        "netwatch_icmp_packets_sent": "Echo requests sent.",
        "netwatch_icmp_packets_received": "Echo replies received.",
        "netwatch_snmp_poll_duration_seconds": "Duration of the last SNMP poll of the device.",
        "netwatch_if_contracted_bps": "Contracted bandwidth of the link this interface carries, bits per second.",
        "netwatch_if_in_bps": "Bits per second received over the last poll interval.",
        "netwatch_if_out_bps": "Bits per second sent over the last poll interval.",
        "netwatch_site_info": "Names of a site, to join on (value 1).",
        "netwatch_device_info": "Names of a device, to join on (value 1).",
        "netwatch_site_up": "1 when the site is up or degraded, else 0.",
        "netwatch_site_state": "1 for the site's current state.",
        "netwatch_site_flapping": "1 while the site changes state too often (a flag beside the state).",
        "netwatch_site_availability_ratio": (
            "Availability month to date (local month), computed as the monthly report does."
        ),
        "netwatch_site_downtime_seconds": "Seconds DOWN month to date (local month), as the monthly report counts them.",
    }

    def __init__(self, *, gzip: bool = False) -> None:
        self._gzip = gzip
        self._families: dict[str, TextFamily] = {}
        self._measured: dict[str, TextFamily] = {}
        self.counter_buffers: dict[str, _CounterOut] = {}
        """By counter measurement: see :meth:`counter_buffer`."""

    def family(self, name: str, kind: str) -> TextFamily:
        """The family ``name``, made on first use; a counter family's samples get ``_total``."""
        family = self._families.get(name)
        if family is None:
            doc = self.DOCS.get(name) or (
                f"netwatch's wrap- and reboot-corrected total of {name} (never the raw device counter)."
                if kind == "counter"
                else f"SNMP profile metric {name}."
            )
            family = self._families[name] = TextFamily(name, doc, kind, gzip=self._gzip)
        return family

    def by_name(self) -> dict[str, TextFamily]:
        """Every family made so far, by name, in the order made."""
        return self._families

    def squeeze(self) -> None:
        """Let each family compress what it holds (gzip scrapes; see :meth:`TextFamily.squeeze`)."""
        if self._gzip:
            for family in self._families.values():
                family.squeeze()

    def measured(self, measurement: str, kind: str) -> TextFamily:
        """The family of a profile's measurement: ``netwatch_`` and its name (kept per name, so
        the full name is not written again for every sample)."""
        family = self._measured.get(measurement)
        if family is None:
            family = self._measured[measurement] = self.family(f"netwatch_{measurement}", kind)
        return family

    def counter_buffer(self, measurement: str) -> _CounterOut:
        """Where the samples of counter ``measurement`` go (see :class:`_CounterOut`)."""
        out = _CounterOut(self.measured(measurement, "counter"), RATE_METRICS.get(measurement))
        self.counter_buffers[measurement] = out
        return out

    def rate_buffer(self, out: _CounterOut) -> bytearray:
        """The bits-per-second buffer of ``out``'s counter, its family made now if not yet."""
        if out.rate_text is None:
            assert out.rate_family is not None
            family = self.family(out.rate_family, "gauge")
            out.rate_text, out.rate_sample = family.text, family.sample_name
        return out.rate_text

    def all(self) -> list[TextFamily]:
        """Every family built."""
        return list(self._families.values())


def make_registry(state: LatestState, storage: StorageStats | None = None) -> SteppedRegistry:
    """A fresh registry holding only netwatch's collector (rendered on the event loop in steps)."""
    registry = SteppedRegistry()
    registry.register(NetwatchCollector(state, storage))
    return registry
