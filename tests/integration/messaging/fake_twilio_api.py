"""A local HTTP server that answers like Twilio's Messages API, for the real SDK to talk to.

    with FakeTwilioApi(account_sid="AC…", auth_token="…") as api:
        sender = TwilioTextSender(..., api_base_url=api.base_url)

It checks HTTP Basic auth as Twilio does (20003 on a wrong token), answers a created message with
Twilio's JSON (201, status "queued", or "accepted" through a Messaging Service), and answers the
numbers in `errors` with Twilio's error body ({"code", "message", "more_info", "status"}).
`delay` holds every answer back, to make the client time out.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from core.db import utcnow


@dataclass
class Received:
    path: str
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeTwilioApi:
    account_sid: str
    auth_token: str
    errors: dict[str, tuple[int, int, str]] = field(
        default_factory=dict
    )  # To -> (HTTP status, code, message)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
                api.received.append(Received(self.path, form, dict(self.headers.items())))
                if api.delay:
                    time.sleep(api.delay)
                status, body = api.answer(self.path, self.headers.get("Authorization", ""), form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake Twilio", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeTwilioApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def sent(self) -> list[dict[str, str]]:
        return [r.form for r in self.received]

    @staticmethod
    def error(status: int, code: int, message: str) -> dict[str, Any]:
        return {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }

    def answer(self, path: str, authorization: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if authorization != expected:
            return 401, self.error(401, 20003, "Authenticate")
        if path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return 404, self.error(404, 20404, f"The requested resource {path} was not found")
        to = form.get("To", "")
        if to in self.errors:
            status, code, message = self.errors[to]
            return status, self.error(status, code, message)
        if not to or not form.get("Body"):
            return 400, self.error(400, 21602, "Message body is required.")
        sid = "SM" + uuid.uuid4().hex
        now = format_datetime(utcnow())
        service = form.get("MessagingServiceSid")
        return 201, {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": None if service else form.get("From"),
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
            "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
