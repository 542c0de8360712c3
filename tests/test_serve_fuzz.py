"""Schemathesis fuzzing of every operation in the HTTP API's OpenAPI schema, against a live uvicorn
on 127.0.0.1: no 5xx, statuses, content types and bodies as the schema documents them, schema-invalid
input rejected with a 4xx, and no hang (every request has a timeout). Run twice: without a token
(loopback only) and with a bearer token, where schemathesis also checks that requests without the
token, or with a wrong one, are refused.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
schemathesis = pytest.importorskip("schemathesis")
httpx = pytest.importorskip("httpx")

from hypothesis import HealthCheck, settings  # noqa: E402

from codeseer.apps.service import Service  # noqa: E402
from codeseer.serve.http import create_app  # noqa: E402

from test_apps_helpers import build_index, make_repo, running  # noqa: E402

pytestmark = pytest.mark.slow  # fuzzing the HTTP API

TOKEN = "fuzz-s3cret"
EXAMPLES_PER_OPERATION = int(os.environ.get("CODESEER_FUZZ_EXAMPLES", "300"))  # fuzzing phase; more locally
REQUEST_TIMEOUT_S = 30  # a request that hangs fails the run instead of stalling it
SLOW_RESPONSE_S = 10  # any slower response fails too (they take milliseconds on this tiny index)
INDEXED_LOCATIONS = ["util/text.py:6", "net/retry.py:8", "shop/Cart.java:7", "docs/guide.md:3"]  # of make_repo
FUZZ_SETTINGS = settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                         suppress_health_check=list(HealthCheck))


def fuzz_config(*, token: str | None) -> "schemathesis.Config":
    """Every check except those that need resources the API does not have (it creates and deletes nothing)."""
    data = {
        "request-timeout": REQUEST_TIMEOUT_S,
        "cache": {"enabled": False},
        "generation": {"mode": "all", "max-examples": EXAMPLES_PER_OPERATION,
                       "database": "none", "deterministic": True},
        "checks": {
            "use_after_free": {"enabled": False},
            "ensure_resource_availability": {"enabled": False},
            "object_level_authorization": {"enabled": False},
            "max_response_time": SLOW_RESPONSE_S,
            # Schema-invalid input must get one of the API's documented refusals (413: over a length limit).
            "negative_data_rejection": {"expected-statuses": ["400", "401", "404", "405", "413", "422"]},
            # Schema-valid input can still be refused: a location not in the index (400), a limit in bytes
            # where the schema counts characters (413), a rule across fields such as "location or code" (422).
            "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "413", "422"]},
        },
    }
    if token is not None:
        data["headers"] = {"Authorization": f"Bearer {token}"}
    return schemathesis.Config.from_dict(data)


@pytest.fixture(scope="module")
def service(tmp_path_factory, tiny_model_dir) -> Service:
    root = make_repo(tmp_path_factory.mktemp("serve-fuzz") / "repo")
    build_index(root, str(tiny_model_dir))
    return Service(root / ".codeseer")


def fuzzed_schema(*, token: str | None):
    """The app's own OpenAPI schema, built at collection time: it does not depend on the index, and
    ``schemathesis.pytest.from_fixture`` (a schema from a live server's fixture) fails under pytest 9
    (it sets ``request.node._nodeid``). Requests go to the live server through ``base_url``."""
    schema = create_app(None, token=token).openapi()
    for name in ("SimilarRequest", "DocsRequest"):  # so the success paths get fuzzed too
        properties = schema["components"]["schemas"][name]["properties"]
        properties["location"]["examples"] = INDEXED_LOCATIONS
        properties["file"]["examples"] = [location.split(":")[0] for location in INDEXED_LOCATIONS]
    return schemathesis.openapi.from_dict(schema, config=fuzz_config(token=token))


@pytest.fixture(scope="module")
def open_url(service):
    with running(create_app(service)) as base:
        yield base


@pytest.fixture(scope="module")
def token_url(service):
    with running(create_app(service, token=TOKEN)) as base:
        yield base


open_api = fuzzed_schema(token=None)
token_api = fuzzed_schema(token=TOKEN)


REQUESTS: Counter = Counter()  # (server, operation, status class) -> requests sent


@pytest.fixture(scope="module", autouse=True)
def fuzz_summary():
    """Print how many requests each operation got, by status class (``pytest -s``), for the report."""
    yield
    for server in sorted({key[0] for key in REQUESTS}):
        operations = sorted({key[1] for key in REQUESTS if key[0] == server})
        for operation in operations:
            by_status = {key[2]: n for key, n in REQUESTS.items() if key[:2] == (server, operation)}
            print(f"fuzz {server:<6} {operation:<14} requests={sum(by_status.values()):<5} "
                  + " ".join(f"{status}={n}" for status, n in sorted(by_status.items())))
    print(f"fuzz total requests={sum(REQUESTS.values())}")


def call_and_validate(case, base_url: str, server: str) -> None:
    response = case.call_and_validate(base_url=base_url)
    REQUESTS[(server, case.operation.label, f"{response.status_code // 100}xx")] += 1


@open_api.parametrize()
@FUZZ_SETTINGS
def test_fuzz_without_a_token(case, open_url):
    call_and_validate(case, open_url, "open")


@token_api.parametrize()
@FUZZ_SETTINGS
def test_fuzz_with_a_bearer_token(case, token_url):
    call_and_validate(case, token_url, "token")


def test_the_fuzzed_schema_is_the_served_one(open_url, token_url):
    """The schema fuzzed (less the added examples) must be exactly what each server publishes."""
    assert httpx.get(open_url + "/openapi.json").json() == create_app(None).openapi()
    served = httpx.get(token_url + "/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert served == create_app(None, token=TOKEN).openapi()
    assert "securitySchemes" not in create_app(None).openapi().get("components", {})  # no token: no auth promised
    assert served["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_every_operation_needs_the_token(token_url):
    """Each operation of the schema: 401 without the token or with a wrong one, answered with it."""
    operations = [(method.upper(), path) for path, item in create_app(None, token=TOKEN).openapi()["paths"].items()
                  for method in item]
    assert len(operations) == 6
    body = {"/search": {"query": "cart total"}, "/similar": {"location": "util/text.py:6"},
            "/locate": {"query": "retry never sleeps"}, "/context": {"query": "sum the cart", "budget": 200},
            "/docs": {"location": "net/retry.py:8"}}
    with httpx.Client(base_url=token_url, timeout=REQUEST_TIMEOUT_S) as client:
        for method, path in operations:
            json = body.get(path) if method == "POST" else None
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                            {"Authorization": f"Basic {TOKEN}"}):
                refused = client.request(method, path, json=json, headers=headers)
                assert refused.status_code == 401, (method, path, headers, refused.text)
                assert refused.headers["www-authenticate"] == "Bearer"
                assert refused.json() == {"detail": "missing or wrong bearer token"}
            answered = client.request(method, path, json=json, headers={"Authorization": f"Bearer {TOKEN}"})
            assert answered.status_code == 200, (method, path, answered.text)
