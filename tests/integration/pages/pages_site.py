"""What the page tests share: the served site, its keys, and signing a browser tab in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from served import http


@dataclass(frozen=True)
class Site:
    base: str
    admin_key: str
    manager_key: str
    agent_key: str

    def api(self, method: str, path: str, body: Any = None, *, key: str | None = None) -> Any:
        """Calls the service's API as a client would; anything but a 2xx fails the test."""
        status, answer = http(method, self.base + path, key or self.admin_key, body)
        assert 200 <= status < 300, (method, path, status, answer)
        return answer


def unique(prefix: str) -> str:
    """Names of a test's own (queues, agents, nodes): every test shares the one service."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def sign_in(page: Any, key: str, path: str = "/wallboard") -> None:
    """Opens `path`, lands on the sign-in form, signs in and comes back."""
    page.goto(path)
    page.wait_for_url(lambda url: urlsplit(url).path == "/sign-in")
    page.fill("#key", key)
    page.click("form.sign-in button[type=submit]")
    page.wait_for_url(lambda url: urlsplit(url).path == path)
