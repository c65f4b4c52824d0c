"""Email against a real SMTP server (aiosmtpd on loopback) with STARTTLS and AUTH."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import email
import email.policy
import logging
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from netwatch.alerting.dispatcher import Dispatcher, MemoryStore
from netwatch.config.alerting import AlertingConfig
from netwatch.config.inventory import Inventory
from tests.netwatch.alerting.conftest import T0, FakeClock, district_down, free_port
from tests.support.receivers import self_signed

PASSWORD = "Mật-khẩu-SMTP-7q2!"
USER = "netwatch@qnm.example"


@dataclass
class Mailbox:
    """What the SMTP server received, and how clients authenticated."""

    port: int
    ca_file: Path
    offered: str
    envelopes: list[Envelope] = field(default_factory=list)
    mechanisms: list[str] = field(default_factory=list)
    tls_at_auth: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        self.mechanisms.append(mechanism)
        self.tls_at_auth.append(session.ssl is not None)
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        return AuthResult(success=ok, handled=False)


@pytest.fixture(params=["PLAIN", "LOGIN"])
def smtp_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Mailbox]:
    """aiosmtpd on 127.0.0.1 requiring STARTTLS and AUTH, offering only the parametrized mechanism."""
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    box = Mailbox(port=free_port(), ca_file=cert, offered=request.param)
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[request.param]
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        tls_context=tls,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=box.authenticate,
        auth_exclude_mechanism=[other],
    )
    controller.start()
    yield box
    controller.stop()


def mail_config(box: Mailbox, password: str = "${SMTP_PASSWORD}", **extra: Any) -> AlertingConfig:
    channel = {
        "type": "email",
        "host": "127.0.0.1",
        "port": box.port,
        "starttls": True,
        "ca_file": str(box.ca_file),
        "username": USER,
        "password": password,
        "from": "Netwatch Quảng Nam <netwatch@qnm.example>",
        "to": ["noc@qnm.example", "Trực ban <truc-ban@qnm.example>"],
        **extra,
    }
    return AlertingConfig.model_validate(
        {"channels": {"ops-mail": channel}, "retry": {"attempts": 2, "initial_backoff": 0.01}},
        context={"env": {"SMTP_PASSWORD": PASSWORD}},
    )


async def test_vietnamese_mail_over_starttls_with_auth(
    smtp_server: Mailbox, inventory: Inventory, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock.advance(dt.timedelta(minutes=1, seconds=5))
    async with Dispatcher(mail_config(smtp_server), inventory, MemoryStore(), clock=clock) as dispatcher:
        dispatcher.submit(district_down(T0))
        await asyncio.wait_for(dispatcher.flush(), 30)
        assert dispatcher.sent_total == {"ops-mail": 1}

    [envelope] = smtp_server.envelopes
    assert smtp_server.tls_at_auth == [True]
    assert smtp_server.mechanisms == [smtp_server.offered]
    assert envelope.mail_from == "netwatch@qnm.example"
    assert envelope.rcpt_tos == ["noc@qnm.example", "truc-ban@qnm.example"]
    raw = envelope.original_content or b""
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0].lower()  # RFC 2047 in the header, 7-bit safe
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(mail, EmailMessage)
    assert mail["Subject"] == (
        "[netwatch] MẤT KẾT NỐI: Thành ủy Tam Kỳ (TK) — 5 điểm phía sau không truy cập được"
    )
    assert mail["From"] == "Netwatch Quảng Nam <netwatch@qnm.example>"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    body = text.get_content().replace("\r\n", "\n")
    assert "Bắt đầu: 28/11/2026 21:05:30 (GMT+7)\n" in body
    assert "Đã kéo dài: 1 phút\n" in body
    assert "  - Đảng ủy phường số 3 (Tam Kỳ) (TK-C03)\n" in body
    assert "<li>Đảng ủy phường số 3 (Tam Kỳ) (TK-C03)</li>" in html.get_content()
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)
    encoded = base64.b64encode(PASSWORD.encode()).decode()
    assert all(encoded not in r.getMessage() for r in caplog.records if r.name.startswith("netwatch"))


async def test_a_wrong_password_fails_without_telling_it(
    smtp_server: Mailbox, inventory: Inventory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sai-mật-khẩu-0000"
    async with Dispatcher(mail_config(smtp_server, password=wrong), inventory, MemoryStore()) as dispatcher:
        dispatcher.submit(district_down(T0))
        await asyncio.wait_for(dispatcher.flush(), 30)
        assert dispatcher.failed_total == {"ops-mail": 1}
    assert smtp_server.envelopes == []
    assert len(smtp_server.mechanisms) == 2  # two attempts, both refused
    assert "SMTPAuthenticationError 535" in caplog.text
    assert all(wrong not in record.getMessage() for record in caplog.records)
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)
