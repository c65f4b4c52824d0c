"""Email channel: stdlib ``smtplib`` (STARTTLS or implicit TLS, AUTH) in a worker thread.

``asyncio.to_thread`` keeps the event loop free while the relay talks; ``timeout`` bounds every
step, so a hung relay costs a thread for at most that long. No extra dependency is needed.
Subjects and bodies are UTF-8 (RFC 2047 encoded-words in headers), so Vietnamese survives any relay.
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from netwatch.alerting.messages import render
from netwatch.alerting.models import Notification
from netwatch.alerting.notifier import DeliveryError, scrub
from netwatch.config.alerting import EmailChannel


def build_message(notification: Notification, config: EmailChannel, *, timezone: str) -> EmailMessage:
    """The mail for one notification: UTF-8 subject, plain text and (optionally) HTML."""
    message = render(notification, timezone)
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = config.sender
    mail["To"] = ", ".join(config.to)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(config.sender)[1].rpartition("@")[2] or None
    mail["Message-ID"] = make_msgid("netwatch", domain=domain)
    mail["X-Netwatch-Alert"] = f"{notification.alertname} {notification.site.code} {notification.status}"
    mail.set_content(message.text, charset="utf-8")
    if config.html:
        mail.add_alternative(message.html, subtype="html", charset="utf-8")
    return mail


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """AUTH PLAIN or LOGIN with UTF-8 credentials (``smtplib.login`` only takes ASCII passwords)."""
    smtp.ehlo_or_helo_if_needed()
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    if "PLAIN" in offered:
        code, reply = smtp.docmd("AUTH", "PLAIN " + _b64(f"\0{username}\0{password}"))
    elif "LOGIN" in offered:
        code, reply = smtp.docmd("AUTH", "LOGIN")
        if code == 334:
            code, reply = smtp.docmd(_b64(username))
        if code == 334:
            code, reply = smtp.docmd(_b64(password))
    else:
        smtp.login(username, password)
        return
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, reply)


class EmailNotifier:
    """Sends notifications through one SMTP relay."""

    def __init__(self, name: str, config: EmailChannel, *, timezone: str) -> None:
        self.name = name
        self.config = config
        self.timezone = timezone

    def _secrets(self) -> list[str]:
        if self.config.password is None:
            return []
        password = self.config.password.get_secret_value()
        login = base64.b64encode(password.encode()).decode()
        plain = base64.b64encode(f"\0{self.config.username}\0{password}".encode()).decode()
        return [password, login, plain]

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.ca_file)

    def _send_sync(self, mail: EmailMessage) -> None:
        cfg = self.config
        timeout = cfg.timeout.total_seconds()
        smtp: smtplib.SMTP
        if cfg.implicit_tls:
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=timeout, context=self._tls())
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=timeout)
        with smtp:
            smtp.ehlo()
            if cfg.starttls:
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if cfg.username is not None and cfg.password is not None:
                login(smtp, cfg.username, cfg.password.get_secret_value())
            smtp.send_message(
                mail, from_addr=parseaddr(cfg.sender)[1], to_addrs=[parseaddr(a)[1] for a in cfg.to]
            )

    async def send(self, notification: Notification) -> None:
        """Mail one notification; raise ``DeliveryError`` (never holding the password) on failure."""
        mail = build_message(notification, self.config, timezone=self.timezone)
        try:
            await asyncio.to_thread(self._send_sync, mail)
        except smtplib.SMTPResponseException as exc:
            reason = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            detail = f"{type(exc).__name__} {exc.smtp_code} {reason}"
            raise DeliveryError(f"email {self.name}: {scrub(detail, self._secrets())}") from None
        except (smtplib.SMTPException, OSError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise DeliveryError(f"email {self.name}: {scrub(detail, self._secrets())}") from None

    async def aclose(self) -> None:
        """Nothing to release: each mail opens and closes its own connection."""
