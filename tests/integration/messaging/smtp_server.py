"""A real SMTP server (aiosmtpd) on a free local port that keeps the messages it accepts.

`refuse` lists recipients it answers 550; `users` turns AUTH on (plain text allowed, as on a
trusted network); `tls` offers STARTTLS with that server context and then requires it.
"""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from served import free_port


@dataclass
class Accepted:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class SmtpServer:
    refuse: set[str] = field(default_factory=set)
    users: dict[str, str] | None = None
    tls: ssl.SSLContext | None = None
    accepted: list[Accepted] = field(default_factory=list)
    port: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        assert isinstance(message, EmailMessage)
        self.accepted.append(Accepted(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self.users is not None:
            user, password = data.login.decode(), data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)  # handled=False: the server answers 535

    def __enter__(self) -> SmtpServer:
        self.port = free_port()
        options: dict[str, Any] = {}
        if self.users is not None:
            options |= {"authenticator": self._authenticate, "auth_require_tls": self.tls is not None}
        if self.tls is not None:
            options |= {"tls_context": self.tls, "require_starttls": True}
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


def self_signed(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh certificate for 127.0.0.1, and a client context trusting it."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client
