"""The inventory documents: the main file and the files it includes, as YAML shapes them.

Apart from ``models`` so the ``alerting:`` section (``netwatch.config.alerting``), which builds on
the shared types in ``models``, can be part of the main document without an import cycle.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from netwatch.config.alerting import AlertingConfig
from netwatch.config.models import (
    DEFAULT_TIMEZONE,
    Code,
    Credential,
    DefaultsModel,
    DeviceModel,
    MaintenanceModel,
    ProvinceModel,
    SiteKindModel,
    SiteModel,
    StrictModel,
    Timezone,
)
from netwatch.config.retention import RetentionPolicy


class InventoryDocument(StrictModel):
    """An inventory file: the province, its defaults, site kinds, sites, devices, credentials and maintenance."""

    include: list[str] = Field(
        default_factory=list,
        description="Globs of files (relative to this one) adding sites, devices and maintenance.",
    )
    province: ProvinceModel = Field(description="Code and name of the province (required).")
    timezone: Timezone = Field(
        default=DEFAULT_TIMEZONE, description="IANA time zone of local times (maintenance, report months)."
    )
    defaults: DefaultsModel = Field(
        default_factory=DefaultsModel,
        description="Rules and collector params for every site (lowest precedence).",
    )
    site_kinds: dict[Code, SiteKindModel] = Field(
        default_factory=dict, description="Site kinds by name, each with its own rules and collector params."
    )
    sites: list[SiteModel] = Field(default_factory=list, description="The sites.")
    devices: list[DeviceModel] = Field(default_factory=list, description="The devices polled.")
    credentials: dict[Code, Credential] = Field(default_factory=dict, description="SNMP credentials by name.")
    maintenance: list[MaintenanceModel] = Field(
        default_factory=list, description="Planned maintenance windows."
    )
    alerting: AlertingConfig | None = Field(
        default=None,
        description="Built-in notifications (webhook in Alertmanager's format, email) for installations without Alertmanager.",
    )
    retention: RetentionPolicy = Field(
        default_factory=RetentionPolicy,
        description="How long raw samples and 5-minute and hourly rollups are kept, and when rollups run.",
    )

    @field_validator("include", mode="before", json_schema_input_type=str | list[str])
    @classmethod
    def _one_include(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class IncludedDocument(StrictModel):
    """A file named by ``include:``: more sites, devices and maintenance windows."""

    sites: list[SiteModel] = Field(default_factory=list, description="More sites.")
    devices: list[DeviceModel] = Field(default_factory=list, description="More devices.")
    maintenance: list[MaintenanceModel] = Field(default_factory=list, description="More maintenance windows.")
