"""Raw RFC 822 mail becomes an InboundEmail; outgoing mail carries the thread it answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.errors import InvalidInput
from messaging.email_smtp import (
    FakeEmailSender,
    OutgoingEmail,
    compose,
    html_to_text,
    message_id_value,
    parse_email,
    thread_references,
)

PLAIN = b"""From: =?utf-8?q?Ana_P=C3=A9rez?= <Ana@Example.com>
To: Soporte <soporte@meridiano.example>, otro@example.com
Cc: jefa@example.com
Subject: Re: Su tarjeta [case #12]
Message-ID: <reply-1@mail.example.com>
In-Reply-To: <sent-2@meridiano.example>
References: <sent-1@meridiano.example>
 <sent-2@meridiano.example>
Date: Mon, 3 Mar 2025 10:00:00 +0100
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Sigue sin funcionar.\r
Gracias.
"""


def test_a_plain_reply_is_read_with_its_sender_thread_and_text() -> None:
    email = parse_email(PLAIN)
    assert (email.sender, email.sender_name) == ("ana@example.com", "Ana Pérez")
    assert email.message_id == "reply-1@mail.example.com"
    assert email.in_reply_to == "sent-2@meridiano.example"
    assert email.references == ("sent-1@meridiano.example", "sent-2@meridiano.example")
    assert email.to == ("soporte@meridiano.example", "otro@example.com", "jefa@example.com")
    assert email.subject == "Re: Su tarjeta [case #12]"
    assert email.text == "Sigue sin funcionar.\nGracias."
    assert not email.auto_submitted


MULTIPART = b"""From: luis@example.com
To: soporte@meridiano.example
Subject: Factura
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: multipart/alternative; boundary="b2"

--b2
Content-Type: text/html; charset=utf-8

<html><head><style>p {color: red}</style></head><body>
<p>Adjunto la <b>factura</b>.</p><p>Luis</p></body></html>
--b2--
--b1
Content-Type: application/pdf
Content-Disposition: attachment; filename="factura.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--b1--
"""


def test_html_only_mail_is_made_plain_and_attachments_are_listed_not_kept() -> None:
    email = parse_email(MULTIPART)
    assert email.text == "Adjunto la factura.\n\nLuis"
    [attachment] = email.attachments
    assert (attachment.filename, attachment.content_type, attachment.size) == (
        "factura.pdf",
        "application/pdf",
        9,
    )


def test_mail_without_a_message_id_gets_one_from_its_content_so_a_retry_is_the_same_mail() -> None:
    raw = b"From: a@example.com\nSubject: x\n\nhola\n"
    first, again = parse_email(raw), parse_email(raw)
    assert first.message_id.startswith("sha256:") and first.message_id == again.message_id
    assert parse_email(raw + b"otra linea\n").message_id != first.message_id


@pytest.mark.parametrize("raw", [b"", b"just some text", b'{"json": true}', b"From: not an address\n\nx"])
def test_something_that_is_not_an_email_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidInput, match="no From address"):
        parse_email(raw)


def test_out_of_office_replies_and_bounces_are_marked_automatic() -> None:
    auto = parse_email(b"From: a@example.com\nAuto-Submitted: auto-replied\nSubject: Out\n\nFuera\n")
    assert auto.auto_submitted


def test_a_reply_carries_in_reply_to_and_the_whole_thread_in_references() -> None:
    references = thread_references(("sent-1@x", "reply-1@y"), "sent-2@x")
    assert references == ("sent-1@x", "reply-1@y", "sent-2@x")
    message = compose(
        OutgoingEmail(
            to="ana@example.com", subject="Re: x", body="hola", in_reply_to="sent-2@x", references=references
        ),
        sender="cc@meridiano.example",
        message_id="new@meridiano.example",
        date=datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
    )
    assert message["Message-ID"] == "<new@meridiano.example>"
    assert message["In-Reply-To"] == "<sent-2@x>"
    assert message["References"] == "<sent-1@x> <reply-1@y> <sent-2@x>"


def test_a_long_thread_keeps_its_first_and_latest_references() -> None:
    previous = tuple(f"m{i}@x" for i in range(30))
    references = thread_references(previous, "last@x")
    assert len(references) == 20 and references[0] == "m0@x" and references[-2:] == ("m29@x", "last@x")


def test_message_ids_are_kept_without_brackets_and_hashed_when_too_long() -> None:
    assert message_id_value(" <abc@x> ") == "abc@x"
    assert message_id_value("<>") is None and message_id_value(None) is None
    long = message_id_value("<" + "a" * 300 + "@x>")
    assert long is not None and long.startswith("sha256:") and len(long) < 255


def test_html_to_text_drops_scripts_and_keeps_paragraphs() -> None:
    assert html_to_text("<p>Uno &amp; dos</p><script>alert(1)</script><div>tres</div>") == "Uno & dos\n\ntres"


def test_the_fake_sender_composes_what_the_real_one_would_send() -> None:
    fake = FakeEmailSender(from_address="Soporte <soporte@meridiano.example>")
    sent = fake.send(OutgoingEmail(to="ana@example.com", subject="Hola", body="…", in_reply_to="a@x"))
    [message] = fake.sent
    assert message["Message-ID"] == f"<{sent.message_id}>" and sent.message_id.endswith("@meridiano.example")
    assert message["References"] == "<a@x>" and sent.references == ("a@x",)


def test_raw_utf8_headers_are_read_as_written() -> None:
    raw = "From: Ana Pérez <ana@example.com>\nSubject: Avería en casa\n\nSin línea\n".encode()
    email = parse_email(raw)
    assert (email.sender_name, email.subject, email.text) == ("Ana Pérez", "Avería en casa", "Sin línea")
