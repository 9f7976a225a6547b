"""Email: sending over SMTP (the standard library's smtplib) and reading raw RFC 822 messages.

    sender = SmtpEmailSender(host="smtp.example.com", port=587, user="cc", password="…",
                             starttls=True, from_address="Soporte <soporte@example.com>")
    sent = sender.send(OutgoingEmail(to="ana@example.com", subject="Re: Su consulta [case #12]",
                                     body="…", in_reply_to="abc@example.com"))
    sent.message_id  # "…@example.com": the email's id on the timeline (RefKind.EMAIL_MESSAGE_ID)

Every email gets a Message-ID of its own, and a reply carries In-Reply-To and References, so the
customer's mail program threads it and their answer names the email it answers. Message ids are
kept without their angle brackets. The port is `EmailSender`, with `FakeEmailSender` beside it.

smtplib is blocking, like the Twilio sender and for the same reason: callers already run their
database work in a worker thread, and the send happens in that thread. One connection per email:
agents send a few an hour, not a newsletter.

`parse_email` reads what relay services and Postfix pipes hand over, a raw RFC 822 message, into an
`InboundEmail`: sender, threading headers, subject, the text (the plain part, else the HTML one made
plain), and the attachments' names and sizes.
"""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
import threading
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parseaddr
from html.parser import HTMLParser
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from core.db import utcnow
from core.errors import InvalidInput
from messaging.errors import InvalidAddress, MessageNotSent, ProviderRejected, ProviderUnavailable

_MAX_REF = 255  # interaction_refs.value
_MAX_REFERENCES = 20  # a long thread's References keeps its first and latest ids


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    to: str
    subject: str
    body: str  # plain text
    in_reply_to: str | None = None  # the Message-ID answered, without brackets
    references: tuple[str, ...] = ()  # the thread so far, oldest first, without brackets


@dataclass(frozen=True, slots=True)
class SentEmail:
    message_id: str  # without brackets
    sender: str
    references: tuple[str, ...]


class EmailSender(Protocol):
    def send(self, email: OutgoingEmail) -> SentEmail:
        """Hands the email to the server; raises a `MessageNotSent` saying why it could not.
        Blocking: call it from a worker thread."""
        ...


def message_id_value(header: str | None) -> str | None:
    """A Message-ID as kept on the timeline: without brackets and spaces; hashed if too long."""
    if not header:
        return None
    value = header.strip().strip("<>").strip()
    if not value:
        return None
    if len(value) > _MAX_REF:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value


def _ids(header: str | None) -> tuple[str, ...]:
    """Every <id> in a References or In-Reply-To header, in order."""
    if not header:
        return ()
    found = re.findall(r"<([^<>\s]+)>", header)
    return tuple(value for value in (message_id_value(i) for i in found) if value)


def thread_references(previous: tuple[str, ...], answered: str) -> tuple[str, ...]:
    """References for a reply to `answered`, whose own References were `previous` (RFC 5322 3.6.4)."""
    chain = [*[i for i in previous if i != answered], answered]
    if len(chain) > _MAX_REFERENCES:
        chain = [chain[0], *chain[-(_MAX_REFERENCES - 1) :]]
    return tuple(chain)


def address_domain(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "centralita.invalid"


def compose(email: OutgoingEmail, *, sender: str, message_id: str, date: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = f"<{message_id}>"
    if email.in_reply_to:
        message["In-Reply-To"] = f"<{email.in_reply_to}>"
    references = email.references or ((email.in_reply_to,) if email.in_reply_to else ())
    if references:
        message["References"] = " ".join(f"<{i}>" for i in references)
    message.set_content(email.body)
    return message


def _new_message_id(sender: str) -> str:
    return make_msgid(domain=address_domain(sender)).strip("<>")


class SmtpEmailSender:
    """The `EmailSender` on an SMTP server (submission port 587 with STARTTLS, by default)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        from_address: str,
        user: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout: float = 15.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._host, self._port, self._from = host, port, from_address
        self._user, self._password = user, password
        self._starttls = starttls
        self._timeout = timeout
        self._tls = tls_context or ssl.create_default_context()

    def send(self, email: OutgoingEmail) -> SentEmail:
        message_id = _new_message_id(self._from)
        message = compose(email, sender=self._from, message_id=message_id, date=utcnow())
        where = f"{self._host}:{self._port}"
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                smtp.ehlo()
                if self._starttls:
                    if not smtp.has_extn("starttls"):
                        raise ProviderRejected(
                            f"the mail server {where} does not offer STARTTLS; "
                            "set CENTRALITA_SMTP_STARTTLS=false only for a server on a trusted network"
                        )
                    smtp.starttls(context=self._tls)
                    smtp.ehlo()
                if self._user is not None:
                    smtp.login(self._user, self._password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()), (None, b""))
            raise InvalidAddress(
                f"the mail server refused the address {email.to}: {_text(reason)}", code=code
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise ProviderRejected(
                f"the mail server {where} refused the user and password (SMTP {exc.smtp_code})",
                code=exc.smtp_code,
            ) from None
        except smtplib.SMTPSenderRefused as exc:
            raise ProviderRejected(
                f"the mail server refused the sender {exc.sender}: {_text(exc.smtp_error)}",
                code=exc.smtp_code,
            ) from None
        except smtplib.SMTPResponseException as exc:
            kind: type[MessageNotSent] = ProviderUnavailable if exc.smtp_code < 500 else ProviderRejected
            raise kind(
                f"the mail server {where} answered {exc.smtp_code}: {_text(exc.smtp_error)}",
                code=exc.smtp_code,
            ) from None
        except ssl.SSLError as exc:
            raise ProviderRejected(f"TLS with the mail server {where} failed: {exc.reason}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise ProviderUnavailable(
                f"the mail server {where} could not be reached: {type(exc).__name__}: {exc}"
            ) from None
        return SentEmail(message_id=message_id, sender=self._from, references=_ids(message["References"]))


def _text(reason: bytes | str) -> str:
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


@dataclass
class FakeEmailSender:
    """An `EmailSender` that keeps the messages it composed. `failures` maps an address to the error
    sending to it raises."""

    from_address: str = "Centralita <cc@example.com>"
    failures: dict[str, MessageNotSent] = field(default_factory=dict)
    sent: list[EmailMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, email: OutgoingEmail) -> SentEmail:
        failure = self.failures.get(email.to)
        if failure is not None:
            raise failure
        message_id = _new_message_id(self.from_address)
        message = compose(email, sender=self.from_address, message_id=message_id, date=utcnow())
        with self._lock:
            self.sent.append(message)
        return SentEmail(
            message_id=message_id, sender=self.from_address, references=_ids(message["References"])
        )


# --- inbound --------------------------------------------------------------------------------------------


class Attachment(BaseModel):
    model_config = ConfigDict(frozen=True)

    filename: str | None
    content_type: str
    size: int


class InboundEmail(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_id: str  # its own, or "sha256:<digest of the raw message>" when it had none
    in_reply_to: str | None
    references: tuple[str, ...]
    sender: str  # the From address, lower-cased
    sender_name: str | None
    to: tuple[str, ...]
    subject: str | None
    text: str
    attachments: tuple[Attachment, ...] = ()
    auto_submitted: bool = False  # an out-of-office or a bounce, not the customer writing


class _PlainText(HTMLParser):
    """An HTML body's words, for mail that comes without a plain-text part."""

    _BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "blockquote"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN and self._hidden:
            self._hidden -= 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    parser = _PlainText()
    parser.feed(html)
    parser.close()
    return parser.text()


def _clean(text: str) -> str:
    """Header text as written: raw UTF-8 in headers (RFC 6532) reaches us as surrogate escapes."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _decoded(part: Message) -> str:
    """A text part's words. Mail that declares no charset (or plain ASCII) but carries 8-bit text is
    nearly always UTF-8 today, else Latin-1; a charset nobody knows is read as UTF-8."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset()
    if charset in (None, "us-ascii", "ascii"):
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            return payload.decode("latin-1")
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def parse_email(raw: bytes) -> InboundEmail:
    """Reads a raw RFC 822 message; InvalidInput when it is not one (no sender)."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    try:
        senders = message["From"].addresses if message["From"] is not None else ()
    except (AttributeError, IndexError, ValueError):
        senders = ()
    sender: Address | None = next((a for a in senders if a.addr_spec and "@" in a.addr_spec), None)
    if sender is None:
        raise InvalidInput("not an email this service can read: it has no From address")
    message_id = message_id_value(_clean(str(message["Message-ID"] or ""))) or (
        "sha256:" + hashlib.sha256(raw).hexdigest()
    )
    text = ""
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = _decoded(body).replace("\r\n", "\n")  # as it came over SMTP
        text = html_to_text(content) if body.get_content_type() == "text/html" else content.strip()
    attachments = tuple(
        Attachment(
            filename=_clean(name) if (name := part.get_filename()) else None,
            content_type=part.get_content_type(),
            size=len(part.get_payload(decode=True) or b""),
        )
        for part in message.iter_attachments()
    )
    recipients: list[str] = []
    for header in ("To", "Cc"):
        try:
            found = message[header].addresses if message[header] is not None else ()
        except (AttributeError, ValueError):
            found = ()
        recipients += [_clean(a.addr_spec).lower() for a in found if a.addr_spec]
    auto = str(message["Auto-Submitted"] or "no").strip().lower()
    subject = _clean(str(message["Subject"])) if message["Subject"] is not None else None
    return InboundEmail(
        message_id=message_id,
        in_reply_to=next(iter(_ids(_clean(str(message["In-Reply-To"] or "")))), None),
        references=_ids(_clean(str(message["References"] or ""))),
        sender=_clean(sender.addr_spec).lower(),
        sender_name=_clean(sender.display_name) or None,
        to=tuple(recipients),
        subject=subject.strip()[:200] if subject else None,
        text=_clean(text),
        attachments=attachments,
        auto_submitted=auto != "no" or message.get_content_type() == "multipart/report",
    )
