"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis).

A dedicated service runs with an API token, its own network name under the session prefix and
an image prefix that names no image, so that no generated spawn can start a real agent. Every
operation of the served document gets generated requests, valid and invalid; no response may be
a 5xx, and every response must match what the document says (status, content type, body
schema, headers). Nothing the fuzzing makes may outlive it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.core.parameters import ParameterLocation

from parallax_docker.api.app import create_app
from parallax_docker.config import Settings, load_settings
from tests.integration.conftest import PREFIX, SECRETS_DIR, session_objects
from tests.support.engine import Engine
from tests.support.server import ServiceProcess

TOKEN = "fuzz-" + os.urandom(16).hex()
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_EXAMPLES = 80


class FuzzTarget:
    def __init__(self, proc: ServiceProcess, schema: dict[str, Any]) -> None:
        self.proc = proc
        self.schema = schema


@pytest.fixture(scope="module")
def target(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzTarget]:
    env = {
        "DOCKER_NETWORK": f"{PREFIX}-fuzz",
        "PARALLAX_IMAGE_PREFIX": f"{PREFIX}-missing/agent-",
        "PARALLAX_SECRETS_DIR": str(SECRETS_DIR),
        "PARALLAX_API_TOKEN": TOKEN,
        "PARALLAX_READY_TIMEOUT_S": "5",
    }
    if "instance" in Settings.model_fields:
        # Anything the fuzzer asks this instance to clean up is its own, not other tests'.
        env["PARALLAX_INSTANCE"] = f"{PREFIX}-fuzz"
    log = tmp_path_factory.mktemp("fuzz") / "service.log"
    proc = ServiceProcess(env, log).start(wait_healthy=False)
    try:
        deadline = time.monotonic() + 30
        while True:
            response = httpx.get(proc.url + "/health", headers=AUTH, timeout=2)
            if response.status_code == 200 and response.json()["runtime"]["synced"]:
                break
            assert time.monotonic() < deadline, "the fuzz target never synced"
            time.sleep(0.1)
        schema = httpx.get(proc.url + "/openapi.json", headers=AUTH, timeout=10).json()
        before = session_objects(engine)
        yield FuzzTarget(proc, schema)
        # Nothing new is left; other tests' services may remove their own networks meanwhile.
        after = session_objects(engine)
        left = tuple(now - then for now, then in zip(after, before, strict=True))
        assert left == (set(), set(), set()), f"the fuzzing left something behind: {left}"
    finally:
        proc.stop()


def _operations() -> list[str]:
    """The operations of the document, read from the app in-process (no engine, no I/O)."""
    settings = load_settings(environ={"PARALLAX_API_TOKEN": TOKEN})
    document = create_app(settings).openapi()
    # Garbage collection acts on the whole engine unless the service has its own instance name.
    scoped = "instance" in Settings.model_fields
    return [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
        if scoped or path != "/gc"
    ]


@pytest.fixture(scope="module")
def loaded(target: FuzzTarget) -> Any:
    return schemathesis.openapi.from_dict(target.schema)


# Spawns that pass every rule still end in IMAGE_NOT_FOUND here (the image prefix names no
# image), so "valid data is accepted" cannot hold; everything else is checked.
EXCLUDED_CHECKS = [checks.positive_data_acceptance]


def _nothing_invalid_sent(case: schemathesis.Case[Any]) -> bool:
    """True when a negative case cannot reach the server as invalid input.

    Headers: every call sends the valid token, which replaces a mutated Authorization header
    (the only header the document declares; missing tokens are test_auth.py's). Query: a query
    string carries text only, so a "wrong type" (an object for a list of strings) arrives as a
    valid string (a known false-positive class of negative testing).
    """
    meta = case.meta
    if meta is None:
        return False
    negated = {
        location
        for location, info in meta.components.items()
        if info.mode == GenerationMode.NEGATIVE
    }
    return negated <= {ParameterLocation.QUERY, ParameterLocation.HEADER}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("label", _operations())
def test_api_answers_every_generated_request_within_its_schema(
    target: FuzzTarget, loaded: Any, label: str, mode: GenerationMode
) -> None:
    operation = loaded.find_operation_by_label(label)
    assert operation is not None, label

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=target.proc.url, headers=AUTH, timeout=30)
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"
        excluded = list(EXCLUDED_CHECKS)
        # 413 (a generated body above PARALLAX_MAX_BODY_BYTES) is a rejection too, and a
        # documented one, though not in schemathesis' list of expected rejection statuses.
        if _nothing_invalid_sent(case) or response.status_code == 413:
            excluded.append(checks.negative_data_rejection)
        case.validate_response(response, excluded_checks=excluded)

    run()


def test_the_fuzz_target_logged_no_unhandled_error(target: FuzzTarget) -> None:
    assert "unhandled error" not in target.proc.logs()
