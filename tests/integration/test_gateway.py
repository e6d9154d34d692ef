"""The model gateway, for real: each CLI on its real image completes a turn through it against
the stand-in models (the gateway's upstreams), and the key is only at the gateway.

The gateway's service runs on its own network, where the stand-in is not: an agent's only way to
a model is the gateway's relay (``http://parallax-gateway:8080``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.integration.conftest import PREFIX, SECRETS_DIR, SESSION
from tests.support.cli_profiles import PROFILES, CliProfile, result_of, turn, write_settings
from tests.support.engine import Engine
from tests.support.images import DOCKER
from tests.support.polling import poll
from tests.support.server import ServiceProcess
from tests.support.standin_container import StandinContainer
from tests.support.standins.client import Tenant

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLIS = sorted(PROFILES)
RELAY_LABEL = "parallax.gateway.relay"


class GatewayService:
    def __init__(self, process: ServiceProcess, instance: str, network: str) -> None:
        self.process = process
        self.instance = instance
        self.network = network
        self.api = httpx.Client(base_url=process.url, timeout=300)


@pytest.fixture(scope="module")
def internet(engine: Engine) -> Iterator[dict[str, StandinContainer]]:
    """Two stand-in "internet" hosts on a network of their own, named for the egress proxy."""
    network = f"{PREFIX}-inet{uuid.uuid4().hex[:4]}"
    subprocess.run(
        [DOCKER, "network", "create", "--label", f"test-session={SESSION}", network],
        check=True,
        capture_output=True,
    )
    hosts = {
        name: StandinContainer(f"{network}-{name}", network, {"test-session": SESSION}).start()
        for name in ("allowed", "blocked")
    }
    yield hosts
    for host in hosts.values():
        host.stop()
    engine.remove_network(network)


def _gateway_env(
    folder: Path, instance: str, standin: StandinContainer, internet: dict[str, StandinContainer]
) -> dict[str, str]:
    return {
        "DOCKER_NETWORK": f"{instance}-net",
        "PARALLAX_INSTANCE": instance,
        "PARALLAX_SECRETS_DIR": str(SECRETS_DIR),
        "PARALLAX_STATE_DIR": str(folder / "state"),
        "PARALLAX_READY_TIMEOUT_S": "60",
        "PARALLAX_STOP_GRACE_S": "5",
        "PARALLAX_NETWORK_GRACE_S": "1",
        "PARALLAX_GATEWAY": "true",
        # The stand-in as every provider's upstream, reached from the host at its address.
        "PARALLAX_GATEWAY_ANTHROPIC_URL": standin.base_url,
        "PARALLAX_GATEWAY_OPENAI_URL": standin.base_url,
        "PARALLAX_GATEWAY_GEMINI_URL": standin.base_url,
        # The "internet" hosts by name, as a split-horizon resolver would give them.
        "PARALLAX_GATEWAY_EGRESS_HOSTS": ",".join(
            f"{name}.test={host.address}" for name, host in internet.items()
        ),
    }


def _remove_service(engine: Engine, service: GatewayService) -> None:
    service.api.close()
    service.process.stop()
    for container in engine.containers(f"parallax.instance={service.instance}"):
        engine.remove_container(container["Id"])
    for container in engine.containers(f"{RELAY_LABEL}={service.instance}"):
        engine.remove_container(container["Id"])
    engine.remove_network(service.network)


@pytest.fixture(scope="module")
def gateway(
    engine: Engine,
    standin: StandinContainer,
    internet: dict[str, StandinContainer],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayService]:
    folder = tmp_path_factory.mktemp("gateway")
    instance = f"{PREFIX}-gw{uuid.uuid4().hex[:4]}"
    env = _gateway_env(folder, instance, standin, internet)
    process = ServiceProcess(env, folder / "service.log").start()
    service = GatewayService(process, instance, env["DOCKER_NETWORK"])
    yield service
    _remove_service(engine, service)


@pytest.fixture
def gw_agent(
    gateway: GatewayService, engine: Engine, agent_image: Callable[[str], str], tenant: Tenant
) -> Iterator[Callable[..., dict[str, Any]]]:
    made: list[str] = []

    def make(profile: CliProfile, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": f"g-{uuid.uuid4().hex[:10]}",
            "type": profile.type,
            "image": agent_image(profile.type),
            # Only the key: the gateway gives each CLI its base URL.
            "env": dict(profile.extra_env),
            "credentials": profile.credentials(tenant.key),
            "resources": {"memory": "1g", "cpu": 1.0},
            "labels": {"test-session": SESSION},
            **fields,
        }
        response = gateway.api.post("/agents", json=body)
        assert response.status_code == 201, response.text
        agent: dict[str, Any] = response.json()
        made.append(agent["containerName"])
        write_settings(engine, agent["containerName"], profile)
        return agent

    yield make
    for name in made:
        engine.remove_container(name)


@pytest.fixture(params=CLIS)
def profile(request: pytest.FixtureRequest) -> CliProfile:
    return PROFILES[request.param]


def events_of(gateway: GatewayService, agent_id: str) -> list[dict[str, Any]]:
    """The agent's recent events (the WebSocket's history), oldest first."""
    url = gateway.process.ws_url
    frames: list[dict[str, Any]] = []
    with connect(f"{url}/ws/events?agentId={agent_id}&history=100", open_timeout=10) as ws:
        while True:
            try:
                frames.append(json.loads(ws.recv(timeout=1.5)))
            except TimeoutError:
                return frames


# Paths where a model answers (and reports usage); count_tokens, model lists and probes do not.
_GENERATING = ("/v1/messages", "/v1/responses", "/chat/completions", "generatecontent")
# What the stand-in answers a side call with (script.py's Reply defaults).
_SIDE_TOKENS = (120, 30)


def sent_usage(tenant: Tenant) -> tuple[int, int]:
    """Input and output tokens the stand-in reported to the tenant's calls."""
    tokens_in = tokens_out = 0
    for request in tenant.requests():
        if not request["path"].lower().endswith(_GENERATING):
            continue
        reply = request["reply"]
        if reply is not None:
            tokens_in += reply.get("input_tokens", 120)
            tokens_out += reply.get("output_tokens", 30)
        else:
            tokens_in += _SIDE_TOKENS[0]
            tokens_out += _SIDE_TOKENS[1]
    return tokens_in, tokens_out


def _places_holding(
    engine: Engine, gateway: GatewayService, agent: dict[str, Any], secret: str
) -> list[str]:
    """Every place the test can look in where ``secret`` shows."""
    found = []
    name = agent["containerName"]
    if secret in json.dumps(engine.inspect(name)):
        found.append("docker inspect")
    code, out = engine.exec(
        name,
        "sh",
        "-c",
        # Every place the agent can write or was given files (the image was built before the
        # key existed), then every process's environment.
        'grep -rslF -- "$1" /home /workspace /tmp /run /var/tmp /etc 2>/dev/null;'
        ' for p in /proc/[0-9]*/environ; do grep -qsF -- "$1" "$p" && echo "$p"; done; true',
        "sh",
        secret,
    )
    assert code == 0, out
    found += [f"file {line}" for line in out.split() if line]
    logs = subprocess.run([DOCKER, "logs", name], capture_output=True, text=True, check=False)
    if secret in logs.stdout + logs.stderr:
        found.append("container logs")
    if secret in Path(gateway.process.log_path).read_text(errors="replace"):
        found.append("service log")
    if secret in json.dumps(events_of(gateway, agent["id"])):
        found.append("events")
    if secret in gateway.api.get(f"/agents/{agent['id']}").text:
        found.append("handle")
    for path in SECRETS_DIR.rglob("*"):
        if path.is_file() and secret in path.read_text(errors="replace"):
            found.append(f"secrets dir {path.name}")
    return found


def test_cli_turn_goes_through_the_gateway_with_the_key_only_there(
    gateway: GatewayService,
    gw_agent: Callable[..., dict[str, Any]],
    tenant: Tenant,
    profile: CliProfile,
    engine: Engine,
) -> None:
    tenant.answer("The answer is 42.", input_tokens=321, output_tokens=17)
    agent = gw_agent(profile)
    answer = turn(gateway.api, agent["id"], "What is six times seven?")
    assert answer["type"] == "response", answer
    assert answer["content"] == "The answer is 42."
    assert result_of(answer)["status"] == "completed"
    main = tenant.requests(main_only=True)
    assert len(main) == 1
    # The stand-in saw the tenant's key: the gateway put it on the request.
    assert tenant.key in json.dumps(main[0]["headers"])
    assert _places_holding(engine, gateway, agent, tenant.key) == []
    # The search does find what is there: the agent's own gateway token is in its env.
    assert any(
        place.startswith(("file", "secrets"))
        for place in _places_holding(engine, gateway, agent, f"pgw1.{agent['id']}.")
    )


def test_usage_counted_equals_what_the_model_reported(
    gateway: GatewayService,
    gw_agent: Callable[..., dict[str, Any]],
    tenant: Tenant,
    profile: CliProfile,
) -> None:
    tenant.answer("Counted.", input_tokens=1234, output_tokens=56)
    agent = gw_agent(profile)
    answer = turn(gateway.api, agent["id"], "Count me.")
    assert answer["type"] == "response", answer
    tokens_in, tokens_out = sent_usage(tenant)
    assert tokens_in >= 1234 and tokens_out >= 56
    usage = gateway.api.get(f"/agents/{agent['id']}/model-usage").json()
    provider = {"claude": "anthropic", "gemini": "gemini"}.get(profile.type, "openai")
    assert (usage["inputTokens"], usage["outputTokens"]) == (tokens_in, tokens_out), usage
    assert usage["requests"] >= 1
    assert set(usage["byProvider"]) == {provider}
    # The turn's result carries the same figures; so do the handle, the metrics, Prometheus.
    result = result_of(answer)["usage"]
    assert (result["inputTokens"], result["outputTokens"]) == (tokens_in, tokens_out)
    handle = gateway.api.get(f"/agents/{agent['id']}").json()
    assert handle["modelUsage"]["inputTokens"] == tokens_in
    metrics = gateway.api.get(f"/agents/{agent['id']}/metrics").json()
    assert metrics["modelUsage"]["outputTokens"] == tokens_out
    text = gateway.api.get("/metrics").text
    line = (
        f'parallax_model_tokens_total{{agent="{agent["id"]}",kind="input",'
        f'provider="{provider}"}} {float(tokens_in)}'
    )
    assert line in text, [x for x in text.splitlines() if "model_tokens" in x]
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "parallax_docker.cli.main",
            "--url",
            gateway.process.url,
            "metrics",
            agent["id"],
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)[0]["modelUsage"]["inputTokens"] == tokens_in


def test_a_budget_stops_the_second_turn_until_it_is_raised(
    gateway: GatewayService,
    gw_agent: Callable[..., dict[str, Any]],
    tenant: Tenant,
    profile: CliProfile,
) -> None:
    # Each CLI, told "no" in its provider's own format, ends its turn at once (no retries).
    tenant.answer("First.", input_tokens=400, output_tokens=20)
    tenant.answer("After the raise.", input_tokens=400, output_tokens=20)
    agent = gw_agent(profile, resources={"memory": "1g", "cpu": 1.0, "budget": {"maxTokens": 300}})
    assert agent["resources"]["budget"] == {"maxTokens": 300}
    first = turn(gateway.api, agent["id"], "One.")
    assert (first["type"], first["content"]) == ("response", "First."), first
    calls = len(tenant.requests())
    started = time.monotonic()
    second = turn(gateway.api, agent["id"], "Two.")
    # Given up at once, not retried for a minute (aider retries an OpenAI 403).
    assert time.monotonic() - started < 30
    assert second["type"] == "error", second
    assert second["metadata"]["code"] == "BUDGET_EXCEEDED", second["metadata"]
    # Refused at the gateway: the model never saw the call.
    assert len(tenant.requests()) == calls
    usage = gateway.api.get(f"/agents/{agent['id']}/model-usage").json()
    assert usage["budgetExceeded"] is True and usage["refused"] >= 1
    events = [e for e in events_of(gateway, agent["id"]) if e["event"] == "budget_exceeded"]
    assert events and events[0]["data"]["limit"] == "maxTokens", events
    raised = gateway.api.patch(f"/agents/{agent['id']}/budget", json={"maxTokens": 100_000})
    assert raised.status_code == 200, raised.text
    assert raised.json()["budgetExceeded"] is False
    third = turn(gateway.api, agent["id"], "Three.")
    assert (third["type"], third["content"]) == ("response", "After the raise."), third


def test_budget_fields_are_refused_when_the_gateway_is_off(api: httpx.Client) -> None:
    response = api.patch("/agents/nobody/budget", json={"maxTokens": 5})
    assert response.status_code == 409
    assert response.json()["code"] == "GATEWAY_DISABLED"


_CALL = (
    "fetch(process.argv[1],{method:'POST',headers:{'x-api-key':process.argv[2],"
    "'content-type':'application/json','anthropic-version':'2023-06-01'},"
    "body:JSON.stringify({model:'claude-sonnet-4-5',max_tokens:16,"
    "messages:[{role:'user',content:'hi'}]})})"
    ".then(async r=>console.log(r.status+' '+await r.text()))"
    ".catch(e=>console.log('000 '+e))"
)
_MESSAGES = "http://parallax-gateway:8080/anthropic/v1/messages"


def token_of(engine: Engine, container: str, name: str) -> str:
    code, out = engine.exec(
        # parallax-exec exports the agent's env (as for a turn) before running the command.
        container,
        "parallax-exec",
        "sh",
        "-c",
        f'printf %s "${name}"',
    )
    assert code == 0 and out.startswith("pgw1."), "the agent has no gateway token"
    return out


def test_a_stolen_token_is_refused_from_another_container(
    gateway: GatewayService,
    gw_agent: Callable[..., dict[str, Any]],
    tenant: Tenant,
    engine: Engine,
) -> None:
    tenant.answer("From the agent itself.")
    agent = gw_agent(PROFILES["claude"])
    token = token_of(engine, agent["containerName"], "ANTHROPIC_API_KEY")
    # From its own container the token works (a plain call, not the CLI).
    code, out = engine.exec(agent["containerName"], "node", "-e", _CALL, _MESSAGES, token)
    assert code == 0 and out.startswith("200 "), out
    # From another container on the same network it does not.
    thief = subprocess.run(
        [
            DOCKER,
            "run",
            "--rm",
            "--network",
            gateway.network,
            "--label",
            f"test-session={SESSION}",
            "--entrypoint",
            "node",
            "parallax/agent-base:latest",
            "-e",
            _CALL,
            _MESSAGES,
            token,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert thief.stdout.startswith("401 "), thief.stdout + thief.stderr
    assert "GATEWAY_TOKEN_INVALID" in thief.stdout
    assert json.loads(thief.stdout[4:])["type"] == "error"
    # Only the agent's own call reached the model.
    assert len(tenant.requests()) == 1
    refusals = gateway.api.get("/metrics").text
    assert 'parallax_gateway_refusals_total{reason="token"}' in refusals


def _curl(engine: Engine, container: str, *args: str) -> tuple[int, str]:
    """curl in the agent with its env (the proxy settings among it): exit code, output."""
    return engine.exec(
        container,
        "parallax-exec",
        "curl",
        "-sS",
        "-m",
        "10",
        "-w",
        "\n%{http_code}",
        *args,
    )


def test_egress_allow_list_lets_a_listed_host_through_and_refuses_another(
    gateway: GatewayService,
    internet: dict[str, StandinContainer],
    engine: Engine,
    agent_image: Callable[[str], str],
) -> None:
    body = {
        "name": f"e-{uuid.uuid4().hex[:10]}",
        "type": "custom",
        "image": agent_image("echo"),
        "egress": {"allow": ["allowed.test"]},
        "resources": {"memory": "128m", "cpu": 0.5},
        "labels": {"test-session": SESSION},
    }
    response = gateway.api.post("/agents", json=body)
    assert response.status_code == 201, response.text
    agent = response.json()
    try:
        assert agent["egress"] == {"allow": ["allowed.test"]}
        assert agent["network"] == f"{gateway.network}-internal"
        name = agent["containerName"]
        health = "/_standin/health"
        # A listed host answers, as a plain proxied request and through a CONNECT tunnel.
        code, out = _curl(engine, name, f"http://allowed.test:8080{health}")
        assert code == 0 and out.endswith("\n200") and '"ok":true' in out, out
        code, out = _curl(engine, name, "--proxytunnel", f"http://allowed.test:8080{health}")
        assert code == 0 and out.endswith("\n200"), out
        # Another is refused at once, with the reason, both ways.
        started = time.monotonic()
        code, out = _curl(engine, name, f"http://blocked.test:8080{health}")
        assert out.endswith("\n403") and "EGRESS_DENIED" in out, out
        code, out = _curl(engine, name, "--proxytunnel", f"http://blocked.test:8080{health}")
        assert code != 0 and "403" in out, out
        assert time.monotonic() - started < 5
        # Around the proxy there is no way out: the internal network routes nothing.
        address = internet["blocked"].address
        code, out = _curl(engine, name, "--noproxy", "*", f"http://{address}:8080{health}")
        assert code != 0, out
        metrics = gateway.api.get("/metrics").text
        refused = [
            line for line in metrics.splitlines() if 'refusals_total{reason="egress"}' in line
        ]
        assert refused and float(refused[0].split()[-1]) >= 2, refused
    finally:
        engine.remove_container(agent["containerName"])


@pytest.mark.parametrize("egress", ["models-only", "none"])
def test_other_egress_choices_show_in_the_handle(
    gateway: GatewayService, engine: Engine, agent_image: Callable[[str], str], egress: str
) -> None:
    body = {
        "name": f"e-{uuid.uuid4().hex[:10]}",
        "type": "custom",
        "image": agent_image("echo"),
        "egress": egress,
        "resources": {"memory": "128m", "cpu": 0.5},
        "labels": {"test-session": SESSION},
    }
    response = gateway.api.post("/agents", json=body)
    assert response.status_code == 201, response.text
    agent = response.json()
    try:
        assert agent["egress"] == egress
        expected = "none" if egress == "none" else f"{gateway.network}-internal"
        assert agent["network"] == expected
        if egress == "models-only":
            _, out = _curl(engine, agent["containerName"], "http://allowed.test:8080/")
            assert "EGRESS_DENIED" in out, out
    finally:
        engine.remove_container(agent["containerName"])


def test_an_allow_list_is_refused_without_the_gateway(api: httpx.Client) -> None:
    body = {"name": "nope", "type": "custom", "egress": {"allow": ["pypi.org"]}}
    response = api.post("/agents", json=body)
    assert response.status_code == 422, response.text
    assert "gateway" in response.json()["error"]


def test_a_relay_goes_with_the_last_agent_of_its_network(
    gateway: GatewayService, engine: Engine, agent_image: Callable[[str], str]
) -> None:
    network = f"{gateway.instance}-own{uuid.uuid4().hex[:4]}"
    body = {
        "name": f"n-{uuid.uuid4().hex[:10]}",
        "type": "custom",
        "image": agent_image("echo"),
        "network": network,
        "resources": {"memory": "128m", "cpu": 0.5},
        "labels": {"test-session": SESSION},
    }
    response = gateway.api.post("/agents", json=body)
    assert response.status_code == 201, response.text
    agent = response.json()
    relays = f"parallax.gateway.network={network}"
    assert len(engine.containers(relays)) == 1
    # The agent reaches the gateway on its own network, by the stable name.
    code, out = engine.exec(
        agent["containerName"],
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://parallax-gateway:8080/anthropic/v1/models",
    )
    assert (code, out) == (0, "401"), out
    assert gateway.api.delete(f"/agents/{agent['id']}").status_code == 204
    poll(
        lambda: (engine.containers(relays), engine.network(network)),
        lambda found: found == ([], None),
        timeout_s=60,
        interval_s=0.5,
    )


def test_an_execution_budget_stops_its_agents(
    gateway: GatewayService, gw_agent: Callable[..., dict[str, Any]], tenant: Tenant
) -> None:
    execution = f"ex-{uuid.uuid4().hex[:8]}"
    budget = gateway.api.put(f"/executions/{execution}/budget", json={"maxTokens": 300})
    assert budget.status_code == 200, budget.text
    tenant.answer("First.", input_tokens=400, output_tokens=20)
    agent = gw_agent(PROFILES["claude"], executionId=execution)
    first = turn(gateway.api, agent["id"], "One.")
    assert (first["type"], first["content"]) == ("response", "First."), first
    second = turn(gateway.api, agent["id"], "Two.")
    assert second["metadata"]["code"] == "BUDGET_EXCEEDED", second["metadata"]
    usage = gateway.api.get(f"/executions/{execution}/model-usage").json()
    assert usage["budgetExceeded"] is True and usage["inputTokens"] >= 400, usage
    assert usage["budget"] == {"maxTokens": 300}


def test_agents_keep_their_gateway_and_what_they_spent_across_a_restart_of_the_service(
    gateway: GatewayService,
    gw_agent: Callable[..., dict[str, Any]],
    tenant: Tenant,
    engine: Engine,
) -> None:
    tenant.answer("Before.", input_tokens=400, output_tokens=20)
    tenant.answer("After.")
    agent = gw_agent(
        PROFILES["claude"], resources={"memory": "1g", "cpu": 1.0, "budget": {"maxTokens": 300}}
    )
    assert turn(gateway.api, agent["id"], "One.")["content"] == "Before."
    spent = gateway.api.get(f"/agents/{agent['id']}/model-usage").json()
    assert spent["inputTokens"] >= 400 and spent["budgetExceeded"] is True, spent
    relays = engine.containers(f"{RELAY_LABEL}={gateway.instance}")
    gateway.process.stop()
    gateway.process.start()
    # The counts came back with the service, and the spent budget with them.
    assert gateway.api.get(f"/agents/{agent['id']}/model-usage").json() == spent
    calls = len(tenant.requests())
    refused = turn(gateway.api, agent["id"], "Two.")
    assert refused["metadata"]["code"] == "BUDGET_EXCEEDED", refused["metadata"]
    assert len(tenant.requests()) == calls
    raised = gateway.api.patch(f"/agents/{agent['id']}/budget", json={"maxTokens": 100_000})
    assert raised.status_code == 200, raised.text
    again = turn(gateway.api, agent["id"], "Three.")
    assert (again["type"], again["content"]) == ("response", "After."), again
    # The same relays serve it: adopted, not made again.
    after = engine.containers(f"{RELAY_LABEL}={gateway.instance}")
    assert {c["Id"] for c in after} == {c["Id"] for c in relays}


def test_an_agent_claimed_from_the_warm_pool_gets_a_token_not_its_key(
    engine: Engine,
    standin: StandinContainer,
    internet: dict[str, StandinContainer],
    tenant: Tenant,
    tmp_path: Path,
) -> None:
    profile = PROFILES["claude"]
    instance = f"{PREFIX}-gwp{uuid.uuid4().hex[:4]}"
    # A short state folder: the gateway's socket lives in it, and a socket's path is short.
    state = Path(tempfile.mkdtemp(prefix="pgw-"))
    env = {**_gateway_env(state, instance, standin, internet), "PARALLAX_POOL": "claude:1"}
    process = ServiceProcess(env, tmp_path / "service.log").start()
    service = GatewayService(process, instance, env["DOCKER_NETWORK"])
    try:
        poll(
            lambda: engine.containers(f"parallax.instance={instance}", "parallax.pool=true"),
            lambda found: any(c["State"] == "running" for c in found),
            timeout_s=120,
        )
        tenant.answer("Pooled and gated.")
        response = service.api.post(
            "/agents",
            json={
                "name": f"gp-{uuid.uuid4().hex[:8]}",
                "type": "claude",
                "env": dict(profile.extra_env),
                "credentials": profile.credentials(tenant.key),
                # No labels: a request with labels of its own is not served from the pool.
            },
        )
        assert response.status_code == 201, response.text
        agent = response.json()
        assert "agent claimed from the pool" in Path(process.log_path).read_text()
        write_settings(engine, agent["containerName"], profile)
        answer = turn(service.api, agent["id"], "Say it.")
        assert (answer["type"], answer["content"]) == ("response", "Pooled and gated."), answer
        assert tenant.key in json.dumps(tenant.requests(main_only=True)[0]["headers"])
        assert _places_holding(engine, service, agent, tenant.key) == []
    finally:
        _remove_service(engine, service)
        shutil.rmtree(state, ignore_errors=True)


def test_a_threads_model_use_is_counted_for_the_thread(
    gateway: GatewayService,
    tenant: Tenant,
    standin: StandinContainer,
    agent_image: Callable[[str], str],
    engine: Engine,
) -> None:
    claude = PROFILES["claude"]
    tenant.answer("Objective done.\nCONFIDENCE: 0.8", input_tokens=500, output_tokens=30)
    execution_id = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
    thread_id = f"{execution_id}-thread-0"
    response = gateway.api.post(
        "/api/threads",
        json={
            "id": thread_id,
            "executionId": execution_id,
            "name": "Claude 1",
            "agentType": "claude",
            "objective": "Count me.",
            "role": "engineer",
            "image": agent_image("claude"),
            # The key only: the gateway points claude at itself.
            "env": {**claude.env(standin.agent_url), claude.key_name: tenant.key},
            "resources": {"memory": "1g", "cpu": 1.0},
        },
    )
    assert response.status_code == 201, response.text
    try:
        # The objective's turn went through the gateway: the thread's counts are the stand-in's.
        usage = poll(
            lambda: gateway.api.get(f"/threads/{thread_id}/model-usage").json(),
            lambda u: (
                u["requests"] >= 1 and (u["inputTokens"], u["outputTokens"]) == sent_usage(tenant)
            ),
            timeout_s=180,
            interval_s=0.5,
        )
        assert usage["inputTokens"] >= 500 and set(usage["byProvider"]) == {"anthropic"}
        assert tenant.key in json.dumps(tenant.requests(main_only=True)[0]["headers"])
        executed = gateway.api.get(f"/executions/{execution_id}/model-usage").json()
        assert executed["inputTokens"] == usage["inputTokens"]
    finally:
        engine.remove_container(f"parallax-{thread_id}")


def test_a_token_is_revoked_as_its_agent_stops(
    gateway: GatewayService,
    gw_agent: Callable[..., dict[str, Any]],
    tenant: Tenant,
    engine: Engine,
) -> None:
    tenant.answer("Still live.")
    # A command that ignores SIGTERM: the container runs on through the stop's grace period,
    # so a call can still be made from it while its agent is stopping.
    agent = gw_agent(PROFILES["claude"], command=["sh", "-c", "trap '' TERM; exec sleep 100000"])
    name = agent["containerName"]
    token = token_of(engine, name, "ANTHROPIC_API_KEY")
    code, out = engine.exec(name, "node", "-e", _CALL, _MESSAGES, token)
    assert code == 0 and out.startswith("200 "), out
    with ThreadPoolExecutor(1) as pool:
        stopping = pool.submit(
            gateway.api.delete, f"/agents/{agent['id']}", params={"timeout": "20000"}
        )
        poll(
            lambda: gateway.api.get(f"/agents/{agent['id']}").json().get("status"),
            lambda status: status == "stopping",
            timeout_s=10,
            interval_s=0.05,
        )
        code, out = engine.exec(name, "node", "-e", _CALL, _MESSAGES, token)
        stopping.result(timeout=60)
    assert out.startswith("401 ") and "GATEWAY_TOKEN_INVALID" in out, out
    # Only the call made while the agent was live reached the model.
    assert len(tenant.requests()) == 1
