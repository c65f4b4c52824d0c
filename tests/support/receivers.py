"""Real notification receivers for tests that run netwatch as a subprocess: a webhook receiver
(aiohttp, in a thread with its own event loop) and an SMTP server requiring STARTTLS and AUTH
(aiosmtpd, with a freshly generated certificate). Both listen on 127.0.0.1 and timestamp what
arrives with ``time.monotonic()``, so a test can measure delays against its own actions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.processes import free_port

START_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Post:
    """One webhook POST: when it arrived (monotonic seconds) and its JSON body."""

    at: float
    body: dict[str, Any]

    @property
    def status(self) -> str:
        """``firing`` or ``resolved``."""
        return str(self.body["status"])

    @property
    def labels(self) -> dict[str, str]:
        """The (single) alert's labels."""
        return dict(self.body["alerts"][0]["labels"])

    @property
    def annotations(self) -> dict[str, str]:
        """The (single) alert's annotations."""
        return dict(self.body["alerts"][0]["annotations"])


class WebhookReceiver:
    """An HTTP receiver of Alertmanager-format webhooks at ``url``; every POST lands in ``posts``."""

    def __init__(self) -> None:
        self.port = free_port()
        self._posts: list[Post] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._serve, name="webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def posts(self) -> list[Post]:
        """A copy of what arrived so far, in order."""
        with self._lock:
            return list(self._posts)

    def matching(self, *, status: str | None = None, **labels: str) -> list[Post]:
        """Posts with that status (if given) whose alert carries all ``labels``."""
        return [
            p
            for p in self.posts
            if (status is None or p.status == status) and all(p.labels.get(k) == v for k, v in labels.items())
        ]

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads((await request.read()).decode("utf-8"))
        with self._lock:
            self._posts.append(Post(time.monotonic(), body))
        return web.Response(text="ok")

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        except BaseException as exc:  # handed to the starting thread, which raises it
            self._error = exc
            self._ready.set()
            loop.run_until_complete(runner.cleanup())
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def start(self) -> None:
        """Listen; return once the port is open."""
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise TimeoutError("the webhook receiver did not start")
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Stop listening and join the thread."""
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT)


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A started webhook receiver, stopped on exit."""
    receiver = WebhookReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by its own key: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "netwatch test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass(frozen=True, slots=True)
class Mail:
    """One delivered mail: when it arrived (monotonic seconds) and the parsed message."""

    at: float
    message: EmailMessage

    @property
    def alert(self) -> tuple[str, ...]:
        """``X-Netwatch-Alert`` split: (alertname, site, status)."""
        return tuple(str(self.message["X-Netwatch-Alert"]).split())


@dataclass
class SmtpServer:
    """aiosmtpd on 127.0.0.1:``port`` that requires STARTTLS, then AUTH as ``username``/``password``."""

    port: int
    ca_file: Path
    username: str = "netwatch@qnm.example"
    password: str = "Mật-khẩu-SMTP-7q2!"
    _mails: list[Mail] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    refused_logins: int = 0

    @property
    def mails(self) -> list[Mail]:
        """A copy of what was delivered so far, in order."""
        with self._lock:
            return list(self._mails)

    def matching(self, alertname: str, site: str, status: str | None = None) -> list[Mail]:
        """Mails about that alert and site (and status, if given)."""
        return [
            m
            for m in self.mails
            if m.alert[:2] == (alertname, site) and (status is None or m.alert[2:] == (status,))
        ]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd hook: keep the message."""
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._mails.append(Mail(time.monotonic(), message))
        return "250 Message accepted"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """aiosmtpd authenticator: only our user, only over TLS (aiosmtpd enforces the TLS part)."""
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            self.username.encode(),
            self.password.encode(),
        )
        if not ok:
            self.refused_logins += 1
        return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(directory: Path) -> Iterator[SmtpServer]:
    """A started SMTP server requiring STARTTLS and AUTH; its CA file is written to ``directory``."""
    cert, key = self_signed(directory)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = SmtpServer(port=free_port(), ca_file=cert)
    controller = Controller(
        server,
        hostname="127.0.0.1",
        port=server.port,
        tls_context=tls,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=server.authenticate,
        ready_timeout=START_TIMEOUT,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
