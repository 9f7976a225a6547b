"""Signing in to the pages: the key goes into an HttpOnly, SameSite=Strict cookie that the API accepts on
reads with exactly the key's permissions, and never on writes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.deps import SESSION_COOKIE
from core.auth.roles import Role


@pytest.fixture
def browser_like(client: TestClient) -> Iterator[TestClient]:
    """The test client without its bearer header and without following redirects, like a fresh browser."""
    client.headers.pop("Authorization")
    client.follow_redirects = False
    yield client
    client.cookies.clear()


def sign_in(client: TestClient, key: str, next_page: str = "/wallboard") -> Any:
    return client.post(
        "/sign-in",
        content=f"key={key}&next={next_page}",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://testserver"},
    )


def test_pages_without_a_session_redirect_to_the_sign_in_form(browser_like: TestClient) -> None:
    for page in ("/wallboard", "/journey-map", "/customers/7"):
        answer = browser_like.get(page)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/sign-in?next={page}"
    form = browser_like.get("/sign-in?next=/journey-map")
    assert form.status_code == 200 and 'name="next" value="/journey-map"' in form.text
    assert "default-src 'self'" in form.headers["content-security-policy"]


def test_signing_in_sets_an_http_only_strict_cookie_and_goes_on(
    browser_like: TestClient, make_key: Any
) -> None:
    key = make_key(Role.MANAGER)
    answer = sign_in(browser_like, key, "/journey-map")
    assert answer.status_code == 303 and answer.headers["location"] == "/journey-map"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}={key};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=43200" in cookie
    assert key not in answer.headers["location"]
    page = browser_like.get("/journey-map")
    assert page.status_code == 200 and "Journey map" in page.text
    assert key not in page.text  # the page never shows the key


def test_a_wrong_key_is_refused_and_sets_no_cookie(browser_like: TestClient) -> None:
    answer = sign_in(browser_like, "cnt_not-a-key")
    assert answer.status_code == 401
    assert "Unknown or revoked API key" in answer.text and "cnt_not-a-key" not in answer.text
    assert "set-cookie" not in answer.headers
    assert sign_in(browser_like, "").status_code == 400


def test_the_cookie_carries_the_keys_own_permissions(browser_like: TestClient, make_key: Any) -> None:
    sign_in(browser_like, make_key(Role.AGENT))
    assert browser_like.get("/api/v1/customers?name=x").status_code == 200
    stats = browser_like.get("/api/v1/stats")
    assert stats.status_code == 403 and "reports:read" in stats.json()["detail"]
    assert browser_like.get("/api/v1/stats/stream").status_code == 403
    wallboard = browser_like.get("/wallboard")
    assert wallboard.status_code == 403 and "reports:read" in wallboard.text
    assert browser_like.get("/customers/1").status_code == 200  # agents read timelines

    browser_like.cookies.clear()
    sign_in(browser_like, make_key(Role.MANAGER))
    assert browser_like.get("/api/v1/stats").status_code != 403
    assert browser_like.get("/wallboard").status_code == 200


def test_the_cookie_authorises_a_write_only_as_json_from_the_services_own_page(
    browser_like: TestClient, make_key: Any
) -> None:
    sign_in(browser_like, make_key(Role.ADMIN))
    assert browser_like.get("/api/v1/customers?name=x").status_code == 200
    forged = [
        browser_like.post("/api/v1/customers", json={"name": "Forged"}),  # no Origin
        browser_like.post(
            "/api/v1/customers", json={"name": "Forged"}, headers={"Origin": "https://evil.example"}
        ),
        browser_like.post("/api/v1/customers", json={"name": "Forged"}, headers={"Origin": "null"}),
        browser_like.post(  # a form another site could send
            "/api/v1/customers",
            content=b'{"name": "Forged"}',
            headers={"Origin": "http://testserver", "Content-Type": "text/plain"},
        ),
    ]
    assert [answer.status_code for answer in forged] == [401, 401, 401, 401]
    assert browser_like.get("/api/v1/customers?name=Forged").json()["items"] == []
    own = browser_like.post(
        "/api/v1/customers", json={"name": "Own"}, headers={"Origin": "http://testserver"}
    )
    assert own.status_code == 201, own.text
    assert [c["name"] for c in browser_like.get("/api/v1/customers?name=Own").json()["items"]] == ["Own"]


def test_a_bearer_header_wins_over_the_cookie(browser_like: TestClient, make_key: Any) -> None:
    sign_in(browser_like, make_key(Role.ADMIN))
    wrong = browser_like.get("/api/v1/customers?name=x", headers={"Authorization": "Bearer cnt_wrong"})
    assert wrong.status_code == 401


def test_a_revoked_key_signs_the_browser_out(client: TestClient, make_key: Any) -> None:
    made = client.post("/api/v1/keys", json={"role": "manager", "name": "leaving"}).json()
    admin = client.headers.pop("Authorization")
    client.follow_redirects = False
    sign_in(client, made["key"])
    assert client.get("/wallboard").status_code == 200
    assert client.delete(f"/api/v1/keys/{made['id']}", headers={"Authorization": admin}).status_code < 300
    assert client.get("/api/v1/customers?name=x").status_code == 401
    assert client.get("/wallboard").status_code == 303


def test_sign_in_refuses_other_sites_and_other_sites_as_destinations(
    browser_like: TestClient, make_key: Any
) -> None:
    key = make_key(Role.MANAGER)
    forged = browser_like.post(
        "/sign-in",
        content=f"key={key}",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example"},
    )
    assert forged.status_code == 403 and "set-cookie" not in forged.headers
    for target in ("https://evil.example/x", "//evil.example/x", "/\\evil.example"):
        assert sign_in(browser_like, key, target).headers["location"] == "/wallboard"


def test_signing_out_clears_the_cookie(browser_like: TestClient, make_key: Any) -> None:
    sign_in(browser_like, make_key(Role.MANAGER))
    answer = browser_like.post("/sign-out")
    assert answer.status_code == 303 and answer.headers["location"] == "/sign-in"
    assert f'{SESSION_COOKIE}=""' in answer.headers["set-cookie"]
    assert browser_like.get("/wallboard").status_code == 303
