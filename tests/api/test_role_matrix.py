"""The role matrix: every data endpoint × every role is allowed or refused with 403, as
`api.security.PERMISSIONS` says; without a key every one of them is 401.

The endpoints are found from the app itself (each route's permission dependency), so a new
endpoint is covered the moment it exists, and an endpoint without a permission check fails.
"""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.security import PERMISSIONS, Role
from tests.api.conftest import Keys
from tests.api.test_openapi_fuzz import api_routes, permission_of

#: routes that need no key: liveness, readiness, metrics and the documents
PUBLIC = {"/health", "/ready", "/metrics"}
#: the console signs in with a cookie and answers with pages (tests/api/console)
CONSOLE = "/console"


def is_api(path: str) -> bool:
    return path not in PUBLIC and not path.startswith(CONSOLE)


def concrete(path: str, keys: Keys) -> str:
    """A request path for a route template, with real identifiers of the workspace."""
    values = {"uscc": keys.enterprise.uscc, "resident_id": keys.business.legal_rep_id}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), path)


def data_routes(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(
        (method, route.path)
        for route in api_routes(app.routes)
        if is_api(route.path)
        for method in route.methods
    )


def test_every_data_route_checks_a_permission(app: FastAPI) -> None:
    unchecked = [
        f"{method} {route.path}"
        for route in api_routes(app.routes)
        if is_api(route.path) and permission_of(route) is None
        for method in route.methods
    ]
    assert data_routes(app), "no data routes found"
    assert unchecked == []


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_role_matrix(client: TestClient, app: FastAPI, keys: Keys, role: Role) -> None:
    checked = 0
    for route in api_routes(app.routes):
        permission = permission_of(route)
        if permission is None:
            continue
        for method in route.methods:
            url = concrete(route.path, keys)
            response = client.request(method, url, headers=keys.of(role), json={})
            refused_for_role = response.status_code == 403 and any(
                item["field"] == "role" for item in response.json()["detail"]
            )
            expected = role in PERMISSIONS[permission]
            assert refused_for_role != expected, (
                f"{role} {method} {route.path}: {response.status_code} {response.text[:200]}"
            )
            assert response.status_code != 401
            assert response.status_code < 500, f"{method} {url}: {response.text[:300]}"
            checked += 1
    assert checked >= 3


def test_no_key_is_401_everywhere(client: TestClient, app: FastAPI, keys: Keys) -> None:
    routes = data_routes(app)
    statuses = {
        f"{method} {path}": client.request(method, concrete(path, keys), json={}).status_code
        for method, path in routes
    }
    assert set(statuses.values()) == {401}, statuses
