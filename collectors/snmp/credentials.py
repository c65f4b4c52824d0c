"""Who to ask and how: SNMP credentials and targets, with secrets that never print.

Protocol names are net-snmp's (``snmpd.conf`` ``createUser`` keywords and ``snmpget -a/-x``), so an
operator can copy them from the device's configuration. ``AES`` is AES-128; ``AES-192``/``AES-256``
extend the localized key the Blumenthal way (draft-blumenthal-aes-usm-04, net-snmp's default),
``AES-192-C``/``AES-256-C`` the Reeder way that Cisco and many vendors use. The two only differ when the
auth hash is shorter than the AES key (MD5 or SHA-1 with AES-192/256), and there they do not interoperate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

SnmpVersion = Literal["2c", "3"]
SecurityLevel = Literal["noAuthNoPriv", "authNoPriv", "authPriv"]
AuthProtocol = Literal["MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"]
PrivProtocol = Literal["DES", "AES", "AES-192", "AES-256", "AES-192-C", "AES-256-C"]

SECRET = "<secret>"


@dataclass(frozen=True, slots=True, repr=False)
class SnmpCredentials:
    """SNMPv2c community or SNMPv3 USM user; ``repr``/``str`` show secrets as ``<secret>``."""

    version: SnmpVersion
    community: str | None = field(default=None, repr=False)
    username: str | None = None
    security_level: SecurityLevel = "noAuthNoPriv"
    auth_protocol: AuthProtocol | None = None
    auth_key: str | None = field(default=None, repr=False)
    priv_protocol: PrivProtocol | None = None
    priv_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        problems = self._problems_v2c() if self.version == "2c" else self._problems_v3()
        if problems:
            # Names of fields only: a secret never goes into an error message.
            raise ValueError("invalid SNMP credentials: " + "; ".join(problems))

    def _problems_v2c(self) -> list[str]:
        problems = []
        if not self.community:
            problems.append("community is required for version 2c")
        if self.username or self.auth_key or self.priv_key or self.auth_protocol or self.priv_protocol:
            problems.append("version 2c takes only a community")
        return problems

    def _problems_v3(self) -> list[str]:
        if self.version != "3":
            return ['version must be "2c" or "3"']
        problems = []
        if not self.username:
            problems.append("username is required for version 3")
        if self.community:
            problems.append("version 3 takes no community")
        if self.security_level not in get_args(SecurityLevel):
            problems.append("security_level must be noAuthNoPriv, authNoPriv or authPriv")
        needs_auth = self.security_level in ("authNoPriv", "authPriv")
        needs_priv = self.security_level == "authPriv"
        for name, needed, value in (
            ("auth_protocol", needs_auth, self.auth_protocol),
            ("auth_key", needs_auth, self.auth_key),
            ("priv_protocol", needs_priv, self.priv_protocol),
            ("priv_key", needs_priv, self.priv_key),
        ):
            if needed and not value:
                problems.append(f"{name} is required when security_level is {self.security_level}")
            elif value and not needed:
                problems.append(f"{name} is set but security_level is {self.security_level}")
        if self.auth_protocol is not None and self.auth_protocol not in get_args(AuthProtocol):
            problems.append("auth_protocol must be one of " + ", ".join(get_args(AuthProtocol)))
        if self.priv_protocol is not None and self.priv_protocol not in get_args(PrivProtocol):
            problems.append("priv_protocol must be one of " + ", ".join(get_args(PrivProtocol)))
        for name, key in (("auth_key", self.auth_key), ("priv_key", self.priv_key)):
            if key is not None and len(key) < 8:
                problems.append(f"{name} must be at least 8 characters")
        return problems

    @classmethod
    def v2c(cls, community: str) -> SnmpCredentials:
        """SNMPv2c with ``community``."""
        return cls(version="2c", community=community)

    @classmethod
    def v3(
        cls,
        username: str,
        *,
        auth_protocol: AuthProtocol | None = None,
        auth_key: str | None = None,
        priv_protocol: PrivProtocol | None = None,
        priv_key: str | None = None,
    ) -> SnmpCredentials:
        """SNMPv3 USM user; the security level follows from which protocols are given."""
        level: SecurityLevel = (
            "authPriv" if priv_protocol else "authNoPriv" if auth_protocol else "noAuthNoPriv"
        )
        return cls(
            version="3",
            username=username,
            security_level=level,
            auth_protocol=auth_protocol,
            auth_key=auth_key,
            priv_protocol=priv_protocol,
            priv_key=priv_key,
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret string these credentials hold (for scrubbing text that must not show them)."""
        return tuple(s for s in (self.community, self.auth_key, self.priv_key) if s)

    def __repr__(self) -> str:
        if self.version == "2c":
            return f"SnmpCredentials(version='2c', community={SECRET})"
        parts = [f"version='3', username={self.username!r}, security_level={self.security_level!r}"]
        if self.auth_protocol:
            parts.append(f"auth_protocol={self.auth_protocol!r}, auth_key={SECRET}")
        if self.priv_protocol:
            parts.append(f"priv_protocol={self.priv_protocol!r}, priv_key={SECRET}")
        return f"SnmpCredentials({', '.join(parts)})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class SnmpTarget:
    """One SNMP agent: where it listens, how to authenticate, how long to wait and how often to retry."""

    address: str
    credentials: SnmpCredentials
    port: int = 161
    timeout: float = 2.0
    retries: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError("port must be 1…65535")
        if not 0 < self.timeout <= 600:
            raise ValueError("timeout must be more than 0 and at most 600 seconds")
        if not 0 <= self.retries <= 10:
            raise ValueError("retries must be 0…10")

    @property
    def endpoint(self) -> str:
        """``address:port`` as operators write it (IPv6 in brackets)."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    @property
    def budget(self) -> float:
        """The longest one request may take: every try waits ``timeout``."""
        return self.timeout * (self.retries + 1)
