"""What the messaging edges are configured with: the senders, the webhook signature check, the
public URL and the link tokens, made once from the settings by the composition root.

Each part is None when its settings are absent: the API then answers 503 naming the setting, and
the IVR's send_link nodes take their on_failure path.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core.settings import Settings
from messaging.continuation import LinkTokens, TimelineLinkSender
from messaging.email_smtp import EmailSender, SmtpEmailSender
from messaging.twilio_messages import TextSender, TwilioSignatures, TwilioTextSender

# Where Twilio posts; the routers in api/routers/webhooks.py serve these paths.
TWILIO_MESSAGES_PATH = "/api/v1/webhooks/twilio/messages"
TWILIO_STATUS_PATH = "/api/v1/webhooks/twilio/status"


@dataclass(frozen=True)
class MessagingChannels:
    region: str
    public_url: str | None = None
    texts: TextSender | None = None
    emails: EmailSender | None = None
    signatures: TwilioSignatures | None = None
    link_tokens: LinkTokens | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MessagingChannels:
        texts = signatures = None
        if settings.twilio_account_sid and settings.twilio_auth_token and settings.public_url:
            token = settings.twilio_auth_token.get_secret_value()
            texts = TwilioTextSender(
                account_sid=settings.twilio_account_sid,
                auth_token=token,
                sms_from=settings.twilio_sms_from,
                whatsapp_from=settings.twilio_whatsapp_from,
                api_base_url=settings.twilio_api_base_url,
            )
            signatures = TwilioSignatures(auth_token=token, public_url=settings.public_url)
        emails = None
        if settings.smtp_host and settings.smtp_from:
            emails = SmtpEmailSender(
                host=settings.smtp_host,
                port=settings.smtp_port,
                from_address=settings.smtp_from,
                user=settings.smtp_user,
                password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                starttls=settings.smtp_starttls,
                timeout=settings.smtp_timeout_seconds,
            )
        tokens = (
            LinkTokens(settings.link_secret.get_secret_value().encode()) if settings.link_secret else None
        )
        return cls(
            region=settings.default_region,
            public_url=settings.public_url,
            texts=texts,
            emails=emails,
            signatures=signatures,
            link_tokens=tokens,
        )

    def status_callback(self) -> str | None:
        """Where Twilio reports a sent message's delivery (None: nowhere, without a public URL)."""
        return f"{self.public_url}{TWILIO_STATUS_PATH}" if self.public_url else None

    def link_sender(self, session_factory: sessionmaker[Session]) -> TimelineLinkSender | None:
        """The IVR's SMS/WhatsApp continuation, when Twilio, the public URL and the link secret are set."""
        if self.texts is None or self.link_tokens is None or self.public_url is None:
            return None
        return TimelineLinkSender(
            session_factory=session_factory,
            texts=self.texts,
            tokens=self.link_tokens,
            public_url=self.public_url,
            status_callback=self.status_callback(),
            region=self.region,
        )
