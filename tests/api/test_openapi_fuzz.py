"""Schemathesis against the OpenAPI document: no 5xx, every response as documented.

Every operation is fuzzed (generated valid and invalid inputs) with a key whose role may use
it, found from the route's own permission dependency, so that the fuzzing reaches the
route bodies rather than stopping at 403. SQLite only: the PostgreSQL runs of the other
tests cover the database; this one covers the inputs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from starlette.routing import BaseRoute

from api.security import PERMISSIONS, Permission, Role
from tests.api.conftest import Keys

#: the role preferred for an operation that several roles may use
EXAMPLES = 25
#: positive_data_acceptance expects every schema-valid input accepted; identifiers are checked
#: by our own code (GB 32100 / GB 11643 check characters, which JSON Schema cannot express) so
#: that the 422 names the check that failed: a schema-valid but wrong USCC is rightly refused
#: ignored_auth sends invalid credentials and expects a 401; this harness puts a valid key on
#: every case (to reach the route bodies), so it would always "accept" them. Authentication
#: is covered by the role-matrix tests (every data route without a key → 401).
EXCLUDED = [schemathesis.checks.positive_data_acceptance, schemathesis.checks.ignored_auth]
PREFERENCE = (Role.UNDERWRITER, Role.REGULATOR, Role.ADMIN, Role.ANALYST, Role.SUBJECT)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fuzz.db'}"


def permission_of(route: APIRoute) -> Permission | None:
    """The permission a route checks (its `api.deps.permitted` dependency), if any."""
    for dependency in route.dependant.dependencies:
        name = getattr(dependency.call, "__name__", "")
        if name.startswith("permitted_"):
            return Permission[name.removeprefix("permitted_").upper()]
    return None


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute of the app, inside included routers too."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)


def headers_by_operation(app: FastAPI, keys: Keys) -> dict[tuple[str, str], dict[str, str]]:
    out: dict[tuple[str, str], dict[str, str]] = {}
    for route in api_routes(app.routes):
        permission = permission_of(route)
        if permission is None:
            continue
        role = next(r for r in PREFERENCE if r in PERMISSIONS[permission])
        for method in route.methods:
            out[(method.upper(), route.path)] = keys.of(role)
    return out


def fuzz(
    operation: schemathesis.APIOperation, mode: GenerationMode, headers: dict[str, str],
    statuses: Counter[int],
) -> None:  # fmt: skip
    """Run Hypothesis over one operation's generated cases, validating every response."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
        derandomize=True, database=None,
    )  # fmt: skip
    def run(case: schemathesis.Case) -> None:
        case.headers = {**(case.headers or {}), **headers}  # a valid key, even in negative mode
        response = case.call_and_validate(excluded_checks=EXCLUDED)
        statuses[response.status_code] += 1

    run()


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_no_server_errors_and_documented_responses(
    app: FastAPI, keys: Keys, mode: GenerationMode
) -> None:
    # (schemathesis' lazy pytest loader does not work with pytest 9: drive Hypothesis here)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = headers_by_operation(app, keys)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 3
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for operation in operations:
        try:
            key = headers.get((operation.method.upper(), operation.path), {})
            fuzz(operation, mode, key, statuses)
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
            assert mode is GenerationMode.NEGATIVE, operation.path
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
    # the fuzzing reached the routes: both answers and refusals were seen, no server error
    assert sum(statuses.values()) >= 5 * len(operations), statuses
    assert not [status for status in statuses if status >= 500], statuses
    if mode is GenerationMode.POSITIVE:
        assert any(status < 300 for status in statuses), statuses
