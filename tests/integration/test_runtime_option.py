"""The container runtime setting (gVisor's runsc when present) and the per-request allow-list.

runsc is not installed here, so the tests use the runtimes the engine does have under other
names (``io.containerd.runc.v2`` next to the default ``runc``): what is checked is that the
service asks for the runtime, verifies the engine applied it, and refuses what is not allowed or
not there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.conftest import PREFIX, agent_body, session_objects
from tests.support.engine import Engine
from tests.support.server import ServiceProcess

ALTERNATIVE = "io.containerd.runc.v2"
StartService = Callable[..., ServiceProcess]


@pytest.fixture(scope="module", autouse=True)
def _engine_has_the_alternative(engine: Engine) -> None:
    if ALTERNATIVE not in (engine.http.get("/info").json().get("Runtimes") or {}):
        pytest.skip(f"the engine has no {ALTERNATIVE} runtime to stand in for runsc")


def _spawn(proc: ServiceProcess, engine: Engine, **fields: Any) -> dict[str, Any]:
    response = httpx.post(proc.url + "/agents", json=agent_body(**fields), timeout=60)
    assert response.status_code == 201, response.text
    handle: dict[str, Any] = response.json()
    return handle


def _refused(
    proc_url: str, engine: Engine, status: int, code: str, **fields: Any
) -> dict[str, Any]:
    before = session_objects(engine)
    response = httpx.post(proc_url + "/agents", json=agent_body(**fields), timeout=60)
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert session_objects(engine) == before
    return body


def test_the_runtime_setting_is_applied_to_every_agent(
    start_service: StartService, engine: Engine
) -> None:
    proc = start_service({"PARALLAX_RUNTIME": ALTERNATIVE})
    handle = _spawn(proc, engine)
    try:
        info = engine.inspect(handle["containerName"])
        assert info is not None and info["HostConfig"]["Runtime"] == ALTERNATIVE
    finally:
        engine.remove_container(handle["containerName"])


def test_without_the_setting_agents_get_the_engines_default(
    spawn: Callable[..., dict[str, Any]], engine: Engine
) -> None:
    default = engine.http.get("/info").json()["DefaultRuntime"]
    handle = spawn()
    assert engine.inspect(handle["containerName"])["HostConfig"]["Runtime"] == default  # type: ignore[index]


def test_a_request_may_pick_an_allowed_runtime(start_service: StartService, engine: Engine) -> None:
    proc = start_service({"PARALLAX_ALLOWED_RUNTIMES": f"runsc, {ALTERNATIVE}"})
    handle = _spawn(proc, engine, runtime=ALTERNATIVE)
    try:
        info = engine.inspect(handle["containerName"])
        assert info is not None and info["HostConfig"]["Runtime"] == ALTERNATIVE
    finally:
        engine.remove_container(handle["containerName"])


def test_a_request_for_a_runtime_not_allowed_is_403_runtime_forbidden(
    api: httpx.Client, engine: Engine
) -> None:
    _refused(str(api.base_url).rstrip("/"), engine, 403, "RUNTIME_FORBIDDEN", runtime=ALTERNATIVE)


def test_a_request_cannot_escape_the_configured_runtime(
    start_service: StartService, engine: Engine
) -> None:
    proc = start_service({"PARALLAX_RUNTIME": ALTERNATIVE})
    _refused(proc.url, engine, 403, "RUNTIME_FORBIDDEN", runtime="runc")


def test_a_configured_runtime_the_engine_lacks_fails_cleanly(
    start_service: StartService, engine: Engine
) -> None:
    proc = start_service({"PARALLAX_RUNTIME": "no-such-runtime"})
    # A new network name: refused before the network would be made, too.
    body = _refused(proc.url, engine, 503, "RUNTIME_UNAVAILABLE", network=f"{PREFIX}-rt-net")
    assert "no-such-runtime" in body["error"]


def test_an_allowed_runtime_the_engine_lacks_fails_cleanly(
    start_service: StartService, engine: Engine
) -> None:
    proc = start_service({"PARALLAX_ALLOWED_RUNTIMES": "ghost-runtime"})
    _refused(
        proc.url,
        engine,
        503,
        "RUNTIME_UNAVAILABLE",
        runtime="ghost-runtime",
        network=f"{PREFIX}-rt-net2",
    )


def test_an_invalid_runtime_setting_stops_the_service_at_start_up(
    start_service: StartService,
) -> None:
    with pytest.raises(RuntimeError, match="PARALLAX_RUNTIME"):
        start_service({"PARALLAX_RUNTIME": "bad name!"})
