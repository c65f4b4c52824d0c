"""TLS, basic auth and response headers for the HTTP endpoint, from an exporter-toolkit ``web-config.yml``.

Operators already write this file for node_exporter, snmp_exporter and Prometheus itself
(https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md), so netwatch
reads the same format. What Python's ``ssl`` module cannot honour (a client certificate requested but
not verified, TLS 1.3 cipher choice, curve lists, inline PEM) is refused with a located error rather
than silently ignored. Errors read ``file:line: field: message`` like the inventory's, never quoting
a value (a password hash is a secret too).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import bcrypt
from pydantic import ConfigDict, Field, ValidationError, model_validator

from collectors.yamlsource import LocatedDoc, YamlSourceError, format_path, load_yaml_file
from netwatch.config.models import Secret
from netwatch.config.models import StrictModel as InventoryModel
from netwatch.errors import ConfigError, ConfigIssue

REALM = "netwatch"
TlsVersionName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
ClientAuthType = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Go's names (crypto/tls.CipherSuites(), what exporter-toolkit accepts) → OpenSSL's, for TLS ≤ 1.2.
GO_TO_OPENSSL_CIPHERS = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
_TLS13_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
_BCRYPT_RE = re.compile(r"^\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}$")
CACHE_SIZE = 100
"""Verified (user, password) pairs remembered, as exporter-toolkit does: a scrape costs a bcrypt check once."""


class StrictModel(InventoryModel):
    """Base of the web-config models: unknown keys are errors, and errors never echo input."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class TlsServerConfig(StrictModel):
    """``tls_server_config``: the server certificate and what TLS clients must offer."""

    cert_file: str = Field(description="PEM certificate (chain) the server presents.")
    key_file: str = Field(description="PEM private key of cert_file.")
    client_auth_type: ClientAuthType = Field(
        default="NoClientCert",
        description="Client certificates: NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert.",
    )
    client_ca_file: str | None = Field(default=None, description="PEM CAs that sign client certificates.")
    min_version: TlsVersionName = Field(default="TLS12", description="Lowest TLS version accepted.")
    max_version: TlsVersionName = Field(default="TLS13", description="Highest TLS version accepted.")
    cipher_suites: list[str] | None = Field(
        default=None, description="Go names of the TLS ≤ 1.2 cipher suites allowed (default: OpenSSL's)."
    )
    prefer_server_cipher_suites: bool = Field(
        default=True, description="Pick the server's preferred suite rather than the client's."
    )
    # Accepted only to refuse them with a reason: exporter-toolkit keys Python's ssl cannot honour.
    curve_preferences: list[str] | None = Field(default=None, description="Not supported: refused.")
    client_allowed_sans: list[str] | None = Field(default=None, description="Not supported: refused.")
    cert: str | None = Field(default=None, description="Not supported (inline PEM): use cert_file.")
    key: Secret | None = Field(default=None, description="Not supported (inline PEM): use key_file.")
    client_ca: str | None = Field(default=None, description="Not supported (inline PEM): use client_ca_file.")

    @model_validator(mode="after")
    def _honourable(self) -> TlsServerConfig:
        refused = {
            "curve_preferences": "Python's ssl module cannot set a list of curves: remove it",
            "client_allowed_sans": "not supported by netwatch: remove it (verify clients by their CA)",
            "cert": "inline PEM is not supported: put the certificate in cert_file",
            "key": "inline PEM is not supported: put the key in key_file",
            "client_ca": "inline PEM is not supported: put the CAs in client_ca_file",
        }
        for name, why in refused.items():
            if getattr(self, name) is not None:
                raise ValueError(f"{name}: {why}")
        if self.client_auth_type in ("RequestClientCert", "RequireAnyClientCert"):
            raise ValueError(
                f"client_auth_type: {self.client_auth_type} accepts unverified client certificates, which"
                " Python's ssl module cannot do: use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            )
        verifying = self.client_auth_type != "NoClientCert"
        if verifying and self.client_ca_file is None:
            raise ValueError(f"client_ca_file is required when client_auth_type is {self.client_auth_type}")
        if not verifying and self.client_ca_file is not None:
            raise ValueError(
                "client_ca_file is set but client_auth_type is NoClientCert:"
                " set client_auth_type: RequireAndVerifyClientCert, or remove client_ca_file"
            )
        if _VERSIONS[self.min_version] > _VERSIONS[self.max_version]:
            raise ValueError("min_version is above max_version")
        for suite in self.cipher_suites or ():
            if suite in _TLS13_SUITES:
                raise ValueError(
                    f"cipher_suites: {suite} is a TLS 1.3 suite; TLS 1.3 suites cannot be chosen"
                    " (all three are always on): list only TLS 1.2 suites"
                )
            if suite not in GO_TO_OPENSSL_CIPHERS:
                raise ValueError(
                    f"cipher_suites: unknown or insecure suite {suite!r}; known: "
                    + ", ".join(GO_TO_OPENSSL_CIPHERS)
                )
        return self


class SecurityHeaders(StrictModel):
    """``http_server_config.headers``: the response headers exporter-toolkit lets operators set."""

    content_security_policy: str | None = Field(default=None, alias="Content-Security-Policy")
    x_frame_options: Literal["deny", "sameorigin"] | None = Field(default=None, alias="X-Frame-Options")
    x_content_type_options: Literal["nosniff"] | None = Field(default=None, alias="X-Content-Type-Options")
    x_xss_protection: str | None = Field(default=None, alias="X-XSS-Protection")
    strict_transport_security: str | None = Field(default=None, alias="Strict-Transport-Security")

    def as_headers(self) -> dict[str, str]:
        """The set headers, by their HTTP names (blank values are unset, as in exporter-toolkit)."""
        return {
            str(info.alias): value
            for name, info in type(self).model_fields.items()
            if (value := getattr(self, name))
        }


class HttpServerConfig(StrictModel):
    """``http_server_config``: HTTP-level settings."""

    http2: bool = Field(default=False, description="Not supported: netwatch serves HTTP/1.1 only.")
    headers: SecurityHeaders = Field(default_factory=SecurityHeaders, description="Extra response headers.")

    @model_validator(mode="after")
    def _no_http2(self) -> HttpServerConfig:
        if self.http2:
            raise ValueError("http2: netwatch serves HTTP/1.1 only: set http2: false or remove it")
        return self


def _bcrypt_hash(value: Secret) -> Secret:
    match = _BCRYPT_RE.match(value.get_secret_value())
    if match is None or not 4 <= int(match.group(1)) <= 31:
        raise ValueError(
            'not a bcrypt hash (expected $2y$10$ and 53 characters, e.g. from `htpasswd -nBC 10 ""`)'
        )
    return value


class WebConfigDocument(StrictModel):
    """A whole ``web-config.yml``."""

    tls_server_config: TlsServerConfig | None = Field(default=None, description="Serve HTTPS.")
    http_server_config: HttpServerConfig = Field(default_factory=HttpServerConfig)
    basic_auth_users: dict[str, Secret] = Field(
        default_factory=dict, description="User name → bcrypt hash of the password; empty: no auth."
    )
    rate_limit: dict[str, Any] | None = Field(default=None, description="Not supported: refused.")

    @model_validator(mode="after")
    def _users(self) -> WebConfigDocument:
        if self.rate_limit is not None:
            raise ValueError("rate_limit: not supported by netwatch: remove it")
        for user, hashed in self.basic_auth_users.items():
            if not user or ":" in user:
                raise ValueError(f"basic_auth_users: user name {user!r} must be non-empty and without ':'")
            try:
                _bcrypt_hash(hashed)
            except ValueError as exc:
                raise ValueError(f"basic_auth_users.{user}: {exc}") from None
        return self


@dataclass(frozen=True)
class WebSecurity:
    """What the web server enforces, resolved from a web-config file (the TLS context is built)."""

    source: str
    ssl_context: ssl.SSLContext | None = None
    users: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        """True when the endpoint speaks HTTPS."""
        return self.ssl_context is not None

    @property
    def auth(self) -> bool:
        """True when every request needs basic-auth credentials."""
        return bool(self.users)


def load_web_config(path: str | Path) -> WebSecurity:
    """Read, validate and resolve a web-config file; certificate files are loaded now.

    Raises:
        ConfigError: one ``file:line: field: message`` issue per problem.
    """
    try:
        doc = load_yaml_file(path)
    except YamlSourceError as exc:
        raise ConfigError(
            [
                ConfigIssue(p.file, p.line, format_path(p.path) or "(document)", p.message)
                for p in exc.problems
            ]
        ) from None
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue(doc.file, 1, "(document)", "a web config is a mapping")])
    try:
        model = WebConfigDocument.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_issue(doc, error) for error in exc.errors(include_url=False)]) from None
    base = Path(path).parent
    context = None
    if model.tls_server_config is not None:
        context = _ssl_context(model.tls_server_config, doc, base)
    users = {user: hashed.get_secret_value().encode() for user, hashed in model.basic_auth_users.items()}
    return WebSecurity(str(path), context, users, model.http_server_config.headers.as_headers())


def _issue(doc: LocatedDoc, error: Any) -> ConfigIssue:
    loc = tuple(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    # A model validator names its field in the message ("cipher_suites: …"): locate it there.
    head, sep, rest = message.partition(": ")
    field_path = tuple(head.split(".")) if sep and re.fullmatch(r"[A-Za-z_][\w.-]*", head) else ()
    if error["type"] == "extra_forbidden":
        message = "unknown key (see the exporter-toolkit web-configuration format)"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif field_path:
        loc, message = (*loc, *field_path), rest
    path = doc.data_path(loc, keep_last=True)
    return ConfigIssue(doc.file, doc.line_of(path), format_path(path) or "(document)", message)


def _located(doc: LocatedDoc, key: str, message: str) -> ConfigIssue:
    path = ("tls_server_config", key)
    return ConfigIssue(doc.file, doc.line_of(path), format_path(path), message)


def _ssl_context(tls: TlsServerConfig, doc: LocatedDoc, base: Path) -> ssl.SSLContext:
    def resolve(name: str) -> str:
        file = Path(name)
        return str(file if file.is_absolute() else base / file)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS[tls.min_version]
    context.maximum_version = _VERSIONS[tls.max_version]
    issues: list[ConfigIssue] = []
    for key in ("cert_file", "key_file", "client_ca_file"):
        name = getattr(tls, key)
        if name is not None and not Path(resolve(name)).is_file():
            issues.append(_located(doc, key, f"cannot read {resolve(name)}: no such file"))
    if issues:
        raise ConfigError(issues)
    try:
        context.load_cert_chain(resolve(tls.cert_file), resolve(tls.key_file))
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        raise ConfigError(
            [
                _located(
                    doc, "cert_file", f"cannot load certificate and key ({reason}): are they PEM and a pair?"
                )
            ]
        ) from None
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=resolve(tls.client_ca_file))
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc.__class__.__name__
            raise ConfigError([_located(doc, "client_ca_file", f"cannot load CAs ({reason})")]) from None
        context.verify_mode = (
            ssl.CERT_REQUIRED if tls.client_auth_type == "RequireAndVerifyClientCert" else ssl.CERT_OPTIONAL
        )
    if tls.cipher_suites:
        try:
            context.set_ciphers(":".join(GO_TO_OPENSSL_CIPHERS[s] for s in tls.cipher_suites))
        except ssl.SSLError:
            raise ConfigError(
                [_located(doc, "cipher_suites", "this OpenSSL offers none of these suites")]
            ) from None
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (``localhost``, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, security: WebSecurity | None) -> str | None:
    """A warning when the endpoint is reachable from the network without TLS or without basic auth."""
    if is_loopback(host):
        return None
    missing = [
        what
        for what, present in (
            ("TLS", security is not None and security.tls),
            ("basic auth", security is not None and security.auth),
        )
        if not present
    ]
    if not missing:
        return None
    return (
        f"the HTTP endpoint listens on {host or 'every address'}, beyond this machine, without "
        f"{' and '.join(missing)}: give --web-config with tls_server_config and basic_auth_users"
    )


class BasicAuthGate:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes, caching verdicts.

    bcrypt is slow on purpose (~70 ms at cost 10); Prometheus scrapes every few seconds with the same
    credentials, so verdicts are kept by a keyed hash of (user, password), never the password itself.
    Checks run one at a time in a worker thread, so a flood of guesses cannot starve the event loop.
    """

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        self._key = secrets.token_bytes(32)
        self._cache: dict[bytes, bool] = {}
        self._lock = asyncio.Lock()
        # Unknown users are checked against this, so their answer takes as long as a known user's.
        self._dummy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(10))
        self.bcrypt_checks = 0
        """How many bcrypt verifications ran (the cache's effect, for tests)."""

    async def allowed(self, header: str | None) -> bool:
        """True when ``header`` carries the credentials of a configured user."""
        credentials = _parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        key = hmac.new(self._key, len(user).to_bytes(4, "big") + user + password, hashlib.sha256).digest()
        verdict = self._cache.get(key)
        if verdict is not None:
            return verdict
        async with self._lock:
            verdict = self._cache.get(key)
            if verdict is None:
                hashed = self._users.get(user.decode("utf-8", "replace"))
                self.bcrypt_checks += 1
                matches = await asyncio.to_thread(bcrypt.checkpw, password, hashed or self._dummy)
                verdict = matches and hashed is not None
                if len(self._cache) >= CACHE_SIZE:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = verdict
        return verdict


def _parse_basic(header: str | None) -> tuple[bytes, bytes] | None:
    """(user, password) from ``Basic base64(user:password)``; None for anything else."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (ValueError, binascii.Error):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None
