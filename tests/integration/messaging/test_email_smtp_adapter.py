"""The SMTP adapter against a real SMTP server (aiosmtpd) on a local port."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from served import free_port
from smtp_server import SmtpServer, self_signed

from messaging.email_smtp import OutgoingEmail, SmtpEmailSender
from messaging.errors import InvalidAddress, ProviderRejected, ProviderUnavailable

FROM = "Soporte Meridiano <soporte@meridiano.example>"


def sender_for(server: SmtpServer, **options: object) -> SmtpEmailSender:
    settings: dict[str, object] = {"starttls": False, "timeout": 5.0} | options
    return SmtpEmailSender(host="127.0.0.1", port=server.port, from_address=FROM, **settings)  # type: ignore[arg-type]


def test_an_email_reaches_the_server_with_its_own_message_id_and_the_thread_it_answers() -> None:
    with SmtpServer() as server:
        sent = sender_for(server).send(
            OutgoingEmail(
                to="ana@example.com",
                subject="Re: Su tarjeta [case #7]",
                body="Hola Ana,\nya está resuelto.",
                in_reply_to="first@mail.example.com",
                references=("root@meridiano.example", "first@mail.example.com"),
            )
        )

    [accepted] = server.accepted
    assert accepted.sender == "soporte@meridiano.example" and accepted.recipients == ["ana@example.com"]
    message = accepted.message
    assert message["Message-ID"] == f"<{sent.message_id}>" and sent.message_id.endswith("@meridiano.example")
    assert message["In-Reply-To"] == "<first@mail.example.com>"
    assert message["References"] == "<root@meridiano.example> <first@mail.example.com>"
    assert message["Subject"] == "Re: Su tarjeta [case #7]"
    assert message["From"] == FROM and message["To"] == "ana@example.com"
    assert message.get_content().replace("\r\n", "\n").strip() == "Hola Ana,\nya está resuelto."
    assert sent.references == ("root@meridiano.example", "first@mail.example.com")


def test_the_server_refusing_a_recipient_is_an_invalid_address() -> None:
    refused = pytest.raises(InvalidAddress, match=r"refused the address nobody@example\.com")
    with SmtpServer(refuse={"nobody@example.com"}) as server, refused as raised:
        sender_for(server).send(OutgoingEmail(to="nobody@example.com", subject="Hola", body="…"))
    assert raised.value.code == 550 and server.accepted == []


def test_login_with_the_configured_user_and_a_wrong_password_is_refused() -> None:
    with SmtpServer(users={"cc": "right"}) as server:
        sender_for(server, user="cc", password="right").send(
            OutgoingEmail(to="a@example.com", subject="1", body=".")
        )
        with pytest.raises(ProviderRejected, match="refused the user and password"):
            sender_for(server, user="cc", password="wrong").send(
                OutgoingEmail(to="a@example.com", subject="2", body=".")
            )
    assert [a.message["Subject"] for a in server.accepted] == ["1"]


def test_starttls_is_required_unless_turned_off_and_nothing_goes_out_in_the_clear() -> None:
    with SmtpServer() as server, pytest.raises(ProviderRejected, match="does not offer STARTTLS"):
        sender_for(server, starttls=True).send(OutgoingEmail(to="a@example.com", subject="x", body="."))
    assert server.accepted == []


def test_an_email_goes_over_starttls_with_login_when_the_server_offers_it(tmp_path: Path) -> None:
    server_tls, client_tls = self_signed(tmp_path)
    with SmtpServer(users={"cc": "secret"}, tls=server_tls) as server:
        sender_for(server, starttls=True, user="cc", password="secret", tls_context=client_tls).send(
            OutgoingEmail(to="ana@example.com", subject="Cifrado", body="…")
        )
        with pytest.raises(ProviderRejected, match="TLS with the mail server"):
            sender_for(server, starttls=True, tls_context=ssl.create_default_context()).send(
                OutgoingEmail(to="ana@example.com", subject="untrusted", body="…")
            )
    assert [a.message["Subject"] for a in server.accepted] == ["Cifrado"]


def test_a_mail_server_that_is_down_is_a_retryable_failure() -> None:
    sender = SmtpEmailSender(host="127.0.0.1", port=free_port(), from_address=FROM, starttls=False, timeout=2)
    with pytest.raises(ProviderUnavailable, match="could not be reached") as raised:
        sender.send(OutgoingEmail(to="ana@example.com", subject="x", body="."))
    assert raised.value.retryable
