"""The ``alerting:`` section: channels (webhook, email), routes, repeat interval and retries.

Self-contained: ``AlertingConfig.model_validate(data)`` checks a whole section, with ``${ENV}`` and
``{file: path}`` secrets resolved as in the inventory (pass ``context={"env": ...}`` to override
the environment).
"""

from __future__ import annotations

from datetime import timedelta
from email.utils import parseaddr
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Discriminator, Field, model_validator
from pydantic_core import PydanticCustomError

from netwatch.config.models import Code, Duration, SecretValue
from netwatch.config.models import StrictModel as InventoryModel

Language = Literal["vi", "en"]


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("url", "must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise PydanticCustomError("url", "put credentials in basic_auth or bearer_token, not in the URL")
    return value


def _mailbox(value: str) -> str:
    _name, address = parseaddr(value)
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise PydanticCustomError(
            "mailbox", "'{value}' is not a mail address such as noc@example.org", {"value": value}
        )
    return value


class StrictModel(InventoryModel):
    """Base of the alerting models: unknown keys are errors, and errors never echo input (it holds secrets)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


HttpUrl = Annotated[str, AfterValidator(_http_url)]
Mailbox = Annotated[str, AfterValidator(_mailbox)]
PositiveDuration = Annotated[Duration, Field(gt=timedelta(0))]


class BasicAuth(StrictModel):
    """HTTP basic authentication for a webhook receiver."""

    username: str = Field(min_length=1, description="User name sent to the receiver.")
    password: SecretValue = Field(description="Password: a string, '${ENV_VAR}' or {file: path}.")


class WebhookChannel(StrictModel):
    """A receiver of Alertmanager-format webhooks (version 4): Alertmanager itself, a chat bridge, a ticketer."""

    type: Literal["webhook"] = Field(description='Channel type: "webhook".')
    url: HttpUrl = Field(description="URL the JSON is POSTed to (http or https, no credentials in it).")
    receiver: str | None = Field(
        default=None, min_length=1, description="The payload's `receiver` field; default: the channel's name."
    )
    timeout: PositiveDuration = Field(
        default=timedelta(seconds=10), description="Time allowed for one POST, e.g. 10 or '30s'."
    )
    basic_auth: BasicAuth | None = Field(default=None, description="HTTP basic authentication (optional).")
    bearer_token: SecretValue | None = Field(
        default=None, description="Bearer token sent as `Authorization: Bearer …` (optional)."
    )
    language: Language | None = Field(
        default=None, description="Language of summaries and descriptions; default: alerting.language."
    )

    @model_validator(mode="after")
    def _one_auth(self) -> WebhookChannel:
        if self.basic_auth is not None and self.bearer_token is not None:
            raise ValueError("give either basic_auth or bearer_token, not both")
        return self


class EmailChannel(StrictModel):
    """Mail through an SMTP relay, with STARTTLS (or implicit TLS) and AUTH."""

    type: Literal["email"] = Field(description='Channel type: "email".')
    host: str = Field(min_length=1, description="SMTP relay host name or address.")
    port: int = Field(default=587, ge=1, le=65_535, description="SMTP port: 587 (submission), 465 or 25.")
    starttls: bool = Field(default=True, description="Upgrade the connection with STARTTLS before AUTH.")
    implicit_tls: bool = Field(default=False, description="Connect with TLS from the start (port 465).")
    ca_file: str | None = Field(
        default=None, description="PEM file of CAs to trust for the relay; default: the system's."
    )
    username: str | None = Field(default=None, min_length=1, description="AUTH user name (optional).")
    password: SecretValue | None = Field(
        default=None, description="AUTH password: a string, '${ENV_VAR}' or {file: path}."
    )
    sender: Mailbox = Field(alias="from", description="From address, e.g. 'netwatch <noc@example.org>'.")
    to: list[Mailbox] = Field(min_length=1, description="Recipient addresses.")
    timeout: PositiveDuration = Field(
        default=timedelta(seconds=30), description="Time allowed for each SMTP step, e.g. 30 or '1m'."
    )
    html: bool = Field(default=True, description="Add an HTML part beside the plain text.")
    language: Language | None = Field(
        default=None, description="Language of the mail; default: alerting.language."
    )

    @model_validator(mode="after")
    def _auth_needs_tls(self) -> EmailChannel:
        if self.starttls and self.implicit_tls:
            raise ValueError("give either starttls or implicit_tls, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: give both or neither")
        if self.password is not None and not (self.starttls or self.implicit_tls):
            raise ValueError(
                "AUTH without TLS would send the password in clear: set starttls or implicit_tls"
            )
        return self


Channel = Annotated[WebhookChannel | EmailChannel, Discriminator("type")]


class RouteMatch(StrictModel):
    """Which notifications a route takes; an empty or missing list matches everything."""

    district: list[Code] | None = Field(default=None, description="District codes, e.g. [TK, HA].")
    kind: list[Code] | None = Field(default=None, description="Site kinds, e.g. [district, commune].")
    site: list[Code] | None = Field(default=None, description="Site codes.")


class Route(StrictModel):
    """Send matching notifications to some channels; the first matching route wins unless it says continue."""

    match: RouteMatch = Field(default_factory=RouteMatch, description="What the route takes (all if empty).")
    channels: list[Code] = Field(min_length=1, description="Names of the channels to send to.")
    continue_: bool = Field(
        default=False, alias="continue", description="Also try the routes after this one when it matches."
    )


class RetryPolicy(StrictModel):
    """How often a channel that is down is retried, with exponential backoff."""

    attempts: int = Field(
        default=5, ge=1, le=20, description="Tries per notification before it counts as failed."
    )
    initial_backoff: PositiveDuration = Field(
        default=timedelta(seconds=2), description="Wait after the first failure; doubled after each one."
    )
    max_backoff: PositiveDuration = Field(
        default=timedelta(minutes=5), description="Longest wait between tries."
    )


class AlertingConfig(StrictModel):
    """Who hears about outages, how, and how often."""

    language: Language = Field(default="vi", description="Language of notifications: vi or en.")
    repeat_interval: PositiveDuration = Field(
        default=timedelta(hours=4), description="Remind of a still-firing alert after this long, e.g. '4h'."
    )
    notify_degraded: bool = Field(default=False, description="Also notify when a site becomes DEGRADED.")
    notify_flapping: bool = Field(
        default=True,
        description="Notify once when a site starts flapping and once when it stops; "
        "while it flaps, its DOWN transitions are not notified one by one.",
    )
    external_url: HttpUrl | None = Field(
        default=None, description="URL of this netwatch (status page), put in webhook payloads."
    )
    channels: dict[Code, Channel] = Field(default_factory=dict, description="Channels by name.")
    routes: list[Route] = Field(default_factory=list, description="Routes, tried in order.")
    default_channels: list[Code] | None = Field(
        default=None, description="Channels for notifications no route takes; default: every channel."
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="Retries of a channel that is down.")
    queue_size: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Batches and deliveries held before new ones are dropped.",
    )

    @model_validator(mode="after")
    def _known_channels(self) -> AlertingConfig:
        named = [
            (f"routes[{i}].channels", name) for i, route in enumerate(self.routes) for name in route.channels
        ]
        named += [("default_channels", name) for name in self.default_channels or ()]
        for where, name in named:
            if name not in self.channels:
                known = ", ".join(sorted(self.channels)) or "none defined"
                raise ValueError(f"{where}: no channel named {name!r} (channels: {known})")
        return self
