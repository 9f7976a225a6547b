import json

from fastapi.testclient import TestClient

from centralita.container import Container


def count_customers(client: TestClient) -> int:
    return len(client.get("/api/v1/customers", params={"name": "a", "limit": 100}).json()["items"])


def test_an_oversized_body_is_413_before_it_is_parsed(client: TestClient, container: Container) -> None:
    huge = json.dumps({"name": "a", "attributes": {"blob": "x" * (container.settings.max_body_bytes + 1)}})
    response = client.post("/api/v1/customers", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(container.settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536

    streamed = client.post(
        "/api/v1/customers", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert count_customers(client) == 0


def test_malformed_json_is_422_and_writes_nothing(client: TestClient) -> None:
    for raw in (b'{"name": "Ana"', b"[1, 2]", b"null", b"\xff\xfe"):
        response = client.post("/api/v1/customers", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422, raw
        assert response.json()["detail"]
    assert count_customers(client) == 0


def test_non_numeric_ids_in_the_path_are_422(client: TestClient) -> None:
    assert client.get("/api/v1/customers/abc").status_code == 422
    assert client.post("/api/v1/interactions/1.5/close", json={"outcome": "completed"}).status_code == 422
