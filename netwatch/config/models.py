"""The inventory file's shape: pydantic models of the YAML document as operators write it.

These models check one entry at a time (types, ranges, formats, cross-field rules within an entry).
References between entries, includes and precedence are the loader's job (``netwatch.config.loader``).
The collectors' params overrides are built from ``collectors.REGISTRY``, never from a list kept here.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from collectors import REGISTRY

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
LABEL_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
LABEL_RE = re.compile(LABEL_PATTERN)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)
_BANDWIDTH_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(?:([kKmMgGtT])?(bps|bit/s|bits/s|b/s))?$")
_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_DURATION_RE = re.compile(r"^(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*(?:(\d+)\s*s)?$")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WeekdayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun", "daily"]
WEEKDAYS: tuple[str, ...] = get_args(Weekday)
_FULL_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_NAMES = {**{d: d for d in WEEKDAYS}, **dict(zip(_FULL_DAY_NAMES, WEEKDAYS, strict=True))}
Role = Literal["router", "switch", "server", "san", "ups", "firewall", "videoconf", "other"]
SecurityLevel = Literal["noAuthNoPriv", "authNoPriv", "authPriv"]
AuthProtocol = Literal["MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"]
PrivProtocol = Literal["DES", "AES", "AES-192", "AES-256", "AES-192-C", "AES-256-C"]


class Secret(SecretStr):
    """A community or key: prints as ``<secret>``, read only through ``get_secret_value()``."""

    def _display(self) -> str:
        return "<secret>"


class StrictModel(BaseModel):
    """Base of every inventory model: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _label(value: str) -> str:
    if not LABEL_RE.match(value):
        raise PydanticCustomError(
            "label",
            "must be 1 to 64 ASCII letters, digits, '_', '.' or '-' (it becomes a Prometheus label value)",
        )
    return value


def _address(value: str) -> str:
    if ":" in value or re.fullmatch(r"[0-9.]+", value):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise PydanticCustomError("address", "not a valid IPv4 or IPv6 address") from None
        return value
    if not _HOSTNAME_RE.match(value):
        raise PydanticCustomError("address", "not a valid IP address or host name")
    return value


def parse_bandwidth(value: Any) -> Any:
    """``20000000``, ``"20Mbps"``, ``"2 Mbit/s"``, ``"512kbps"`` → bits per second (decimal prefixes)."""
    if isinstance(value, str):
        match = _BANDWIDTH_RE.match(value.strip())
        if match is None:
            raise PydanticCustomError(
                "bandwidth",
                "cannot read '{value}' as a bandwidth: write bits per second, e.g. 20000000, '20Mbps',"
                " '2 Mbit/s' or '512kbps'",
                {"value": value},
            )
        number, prefix, _unit = match.groups()
        return float(number) * _PREFIX[(prefix or "").lower()]
    return value


def parse_duration(value: Any) -> Any:
    """``3600``, ``"1h"``, ``"90m"``, ``"1h30m"``, ``"45s"`` → a timedelta."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value.strip())
        if match is None or not any(match.groups()):
            raise PydanticCustomError(
                "duration",
                "cannot read '{value}' as a duration: write seconds or e.g. '1h', '90m', '1h30m'",
                {"value": value},
            )
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (KeyError, ValueError, OSError):
        raise PydanticCustomError(
            "timezone",
            "unknown time zone '{value}': use an IANA name such as Asia/Ho_Chi_Minh",
            {"value": value},
        ) from None
    return value


def _resolve_secret(value: Any, info: ValidationInfo) -> Any:
    context = info.context if isinstance(info.context, dict) else {}
    if isinstance(value, str):
        match = _ENV_REF.fullmatch(value)
        if match is None:
            return value
        name = match.group(1)
        env = context.get("env", os.environ)
        resolved = env.get(name)
        if not resolved:
            raise PydanticCustomError(
                "secret_env", "environment variable {name} is not set (or empty)", {"name": name}
            )
        return resolved
    if isinstance(value, dict):
        if set(value) != {"file"} or not isinstance(value["file"], str):
            raise PydanticCustomError("secret", "a secret is a string, '${ENV_VAR}' or {file: path}")
        path = Path(value["file"])
        if not path.is_absolute():
            path = Path(context.get("base_dir", ".")) / path
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
            raise PydanticCustomError(
                "secret_file",
                "cannot read secret file {path}: {reason}",
                {"path": str(path), "reason": reason},
            ) from None
        if not text:
            raise PydanticCustomError("secret_file", "secret file {path} is empty", {"path": str(path)})
        return text
    return value


Code = Annotated[str, AfterValidator(_label), WithJsonSchema({"type": "string", "pattern": LABEL_PATTERN})]
Address = Annotated[str, AfterValidator(_address)]
Timezone = Annotated[str, AfterValidator(_timezone)]
Bandwidth = Annotated[
    float,
    BeforeValidator(parse_bandwidth),
    Field(gt=0),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?\s*([kKmMgGtT]?(bps|bit/s|bits/s|b/s))?$"},
            ]
        }
    ),
]
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema({"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string"}]}),
]
SecretValue = Annotated[
    Secret,
    BeforeValidator(_resolve_secret),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "writeOnly": True},
                {
                    "type": "object",
                    "properties": {"file": {"type": "string", "description": "File holding the secret."}},
                    "required": ["file"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]


def _overrides_model(kind: str) -> type[BaseModel]:
    """A model of one kind's params with every field optional: what defaults, kinds, sites and devices override."""
    params_model = REGISTRY[kind].params_model
    fields: dict[str, Any] = {}
    for name, info in params_model.model_fields.items():
        if name == "kind":
            continue
        annotation: Any = info.annotation
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        fields[name] = (annotation | None, Field(default=None, description=info.description))
    return create_model(
        f"{params_model.__name__}Overrides",
        __base__=StrictModel,
        __doc__=f"Overrides of the {kind} collector's params; unset keys come from the next level down.",
        **fields,
    )


CollectorsOverrides: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "CollectorsOverrides",
    __base__=StrictModel,
    __doc__="Params overrides per collector kind.",
    **{
        kind: (
            _overrides_model(kind) | None,
            Field(default=None, description=f"{kind}: {spec.description or 'collector params'}"),
        )
        for kind, spec in REGISTRY.items()
    },
)

_DOWN_AFTER = "Consecutive failed rounds before a site is DOWN."
_UP_AFTER = "Consecutive good rounds before a DOWN site is UP again."
_LOSS = "Packet loss ratio (0–1) from which a round counts as degraded."
_RTT = "Average round-trip time in seconds from which a round counts as degraded."
_SLA = "Availability target (0–1) a site's own availability is reported against."
_COLLECTORS = "Params overrides per collector kind (e.g. icmp: {interval: 10, probes: 5})."


class RuleOverrides(StrictModel):
    """Health rules a site kind or a site may override; unset ones come from the next level down."""

    down_after: int | None = Field(default=None, ge=1, le=1000, description=_DOWN_AFTER)
    up_after: int | None = Field(default=None, ge=1, le=1000, description=_UP_AFTER)
    degraded_loss_ratio: float | None = Field(default=None, gt=0, le=1, description=_LOSS)
    degraded_rtt_seconds: float | None = Field(default=None, gt=0, le=60, description=_RTT)
    sla_target: float | None = Field(default=None, gt=0, le=1, description=_SLA)
    collectors: CollectorsOverrides = Field(default_factory=CollectorsOverrides, description=_COLLECTORS)


class DefaultsModel(StrictModel):
    """Health rules and collector params for every site, unless its kind, itself or a device overrides them."""

    down_after: int = Field(default=3, ge=1, le=1000, description=_DOWN_AFTER)
    up_after: int = Field(default=1, ge=1, le=1000, description=_UP_AFTER)
    degraded_loss_ratio: float = Field(default=0.2, gt=0, le=1, description=_LOSS)
    degraded_rtt_seconds: float = Field(default=0.5, gt=0, le=60, description=_RTT)
    sla_target: float = Field(default=0.99, gt=0, le=1, description=_SLA)
    collectors: CollectorsOverrides = Field(default_factory=CollectorsOverrides, description=_COLLECTORS)


class SiteKindModel(RuleOverrides):
    """A kind of site (district, commune, data center…) with its own rules and collector params."""

    description: str | None = Field(default=None, description="What sites of this kind are, for people.")


class ProvinceModel(StrictModel):
    """The province this inventory describes."""

    code: Code = Field(description="Short ASCII code of the province, e.g. QNM (a label value).")
    name: str = Field(min_length=1, description="Name of the province, e.g. Quảng Nam.")


class LinkModel(StrictModel):
    """One link of a site: the device (and optionally its interface) that stands for it."""

    device: Code = Field(description="Name of the device at this site whose reachability is the link's.")
    interface: str | None = Field(
        default=None, min_length=1, description="ifName of the device's interface carrying the link."
    )
    contracted_bps: Bandwidth | None = Field(
        default=None,
        description="Contracted bandwidth: bits/s, or a string like '20Mbps', '2 Mbit/s', '512kbps'.",
    )
    name: str | None = Field(default=None, min_length=1, description="Name of the link, e.g. 'Megawan'.")


class SiteModel(RuleOverrides):
    """A place the operators care about: a party committee, a board, the data center, a commune."""

    code: Code = Field(description="Code unique in the province (ASCII; the `site` label), e.g. TK-C01.")
    name: str = Field(min_length=1, description="Name in Vietnamese, with diacritics.")
    kind: Code = Field(description="Site kind, one of site_kinds.")
    parent: Code | None = Field(
        default=None, description="Code of the site this one reaches the network through (optional)."
    )
    district: Code | None = Field(
        default=None,
        description="Code of the district site; default: itself for a district, else its parent's, else the province.",
    )
    links: list[LinkModel] = Field(
        default_factory=list, description="The site's links (several when dual-homed)."
    )


def _collectors_list(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(kind, str) for kind in value):
        return {kind: {} for kind in value}
    if isinstance(value, dict):
        return {kind: ({} if params is None else params) for kind, params in value.items()}
    return value


class DeviceModel(StrictModel):
    """A polled box: router, switch, server, SAN, UPS, firewall, video-conference endpoint."""

    name: Code = Field(description="Device name, unique in the inventory (ASCII; the `device` label).")
    site: Code = Field(description="Code of the site the device stands at.")
    address: Address = Field(description="IPv4 or IPv6 address, or host name, the collectors poll.")
    port: int | None = Field(default=None, ge=1, le=65_535, description="Port, for collectors that use one.")
    role: Role = Field(default="other", description="What the device is.")
    upstream: Code | None = Field(
        default=None, description="Name of the device this one is reached through (optional)."
    )
    collectors: (
        Annotated[
            CollectorsOverrides,
            BeforeValidator(
                _collectors_list, json_schema_input_type=list[Literal[*REGISTRY]] | CollectorsOverrides
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="Collector kinds polling this device: a list ([icmp]) or kind → params overrides; default [icmp].",
    )


def _weekdays(value: Any) -> Any:
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list):
        return [
            _WEEKDAY_NAMES.get(item.strip().lower(), item) if isinstance(item, str) else item
            for item in items
        ]
    return value


def _localize(moment: datetime, timezone: str) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(timezone))


class MaintenanceModel(StrictModel):
    """Planned work on some sites and their subtrees: once (start, end) or recurring (every, at, duration)."""

    name: str = Field(min_length=1, description="What the work is.")
    sites: list[Code] = Field(min_length=1, description="Codes of the sites covered (with their subtrees).")
    start: datetime | None = Field(
        default=None,
        description="Start of a one-off window (ISO 8601; without offset: the inventory's timezone).",
    )
    end: datetime | None = Field(default=None, description="End of a one-off window (after start).")
    every: (
        Annotated[
            list[WeekdayName],
            BeforeValidator(_weekdays, json_schema_input_type=str | list[str]),
        ]
        | None
    ) = Field(default=None, description="Weekdays of a recurring window (mon … sun), or [daily].")
    at: time | None = Field(default=None, description="Local start time of a recurring window, e.g. '22:00'.")
    duration: Duration | None = Field(
        default=None, description="Length of a recurring window: seconds, or e.g. '1h', '90m'."
    )

    @model_validator(mode="after")
    def _one_kind_of_window(self, info: ValidationInfo) -> MaintenanceModel:
        one_off = self.start is not None or self.end is not None
        recurring = self.every is not None or self.at is not None or self.duration is not None
        if one_off and recurring:
            raise ValueError("give either start and end, or every, at and duration, not both")
        if one_off:
            if self.start is None or self.end is None:
                raise ValueError("a one-off window needs both start and end")
            timezone = (info.context or {}).get("timezone", DEFAULT_TIMEZONE)
            if _localize(self.end, timezone) <= _localize(self.start, timezone):
                raise ValueError("end must be after start")
            return self
        if self.every is None or self.at is None or self.duration is None:
            raise ValueError("a recurring window needs every, at and duration (or give start and end)")
        if "daily" in self.every and len(self.every) > 1:
            raise ValueError("every: use either [daily] or weekday names, not both")
        if not self.every:
            raise ValueError("every: name at least one weekday, or daily")
        if not timedelta(0) < self.duration <= timedelta(days=7):
            raise ValueError("duration must be more than 0 and at most 7 days")
        return self


def _version(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class SnmpV2cCredential(StrictModel):
    """An SNMPv2c community."""

    version: Annotated[Literal["2c"], BeforeValidator(_version)] = Field(description='SNMP version: "2c".')
    community: SecretValue = Field(description="Community string, or '${ENV_VAR}', or {file: path}.")

    @model_validator(mode="after")
    def _community_set(self) -> SnmpV2cCredential:
        if not self.community.get_secret_value():
            raise ValueError("community must not be empty")
        return self


class SnmpV3Credential(StrictModel):
    """An SNMPv3 user (USM)."""

    version: Annotated[Literal["3"], BeforeValidator(_version)] = Field(description='SNMP version: "3".')
    username: str = Field(min_length=1, max_length=32, description="USM user name.")
    security_level: SecurityLevel = Field(
        default="authPriv", description="noAuthNoPriv, authNoPriv or authPriv."
    )
    auth_protocol: AuthProtocol | None = Field(default=None, description="Authentication protocol.")
    auth_key: SecretValue | None = Field(
        default=None,
        description="Authentication pass phrase (≥ 8 characters), or '${ENV_VAR}', or {file: path}.",
    )
    priv_protocol: PrivProtocol | None = Field(default=None, description="Privacy (encryption) protocol.")
    priv_key: SecretValue | None = Field(
        default=None, description="Privacy pass phrase (≥ 8 characters), or '${ENV_VAR}', or {file: path}."
    )

    @model_validator(mode="after")
    def _level_matches_keys(self) -> SnmpV3Credential:
        needs_auth = self.security_level in ("authNoPriv", "authPriv")
        needs_priv = self.security_level == "authPriv"
        problems = []
        for name, needed, given in (
            ("auth_protocol", needs_auth, self.auth_protocol is not None),
            ("auth_key", needs_auth, self.auth_key is not None),
            ("priv_protocol", needs_priv, self.priv_protocol is not None),
            ("priv_key", needs_priv, self.priv_key is not None),
        ):
            if needed and not given:
                problems.append(f"{name} is required when security_level is {self.security_level}")
            elif given and not needed:
                problems.append(
                    f"{name} is set but security_level is {self.security_level}: remove it or raise security_level"
                )
        for name, key in (("auth_key", self.auth_key), ("priv_key", self.priv_key)):
            if key is not None and len(key.get_secret_value()) < 8:
                problems.append(f"{name} must be at least 8 characters (net-snmp rejects shorter keys)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _credential_tag(value: Any) -> str | None:
    version = value.get("version") if isinstance(value, dict) else getattr(value, "version", None)
    return None if version is None else str(_version(version))


Credential = Annotated[
    Annotated[SnmpV2cCredential, Tag("2c")] | Annotated[SnmpV3Credential, Tag("3")],
    Discriminator(
        _credential_tag,
        custom_error_type="credential_version",
        custom_error_message='version must be "2c" or "3"',
    ),
]
