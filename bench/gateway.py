"""The model gateway's cost: ``.venv/bin/python -m bench.gateway`` (docs/benchmarks.md).

One agent (the echo image) calls the stand-in model service from inside its container, both
directly (the stand-in on the agent's network) and through the gateway (relay, Unix socket, the
service, back out to the stand-in), interleaved so that load on the shared machine hits both
alike. It reports the added p50 of a whole answer and of a streamed answer's first byte, then
holds 200 streams open at once through the gateway and checks that every one completes and is
counted. It runs its own service, network and containers and removes them; the load average
before and after is recorded with the figures (bench/results/gateway.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from tests.support.images import DOCKER
from tests.support.standin_container import StandinContainer
from tests.support.standins.client import Tenant
from tests.support.standins.script import Reply

from bench.machine import load_average
from bench.service import BenchService
from bench.stats import Summary

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "gateway.json"
IMAGE = "parallax/agent-echo:latest"

# Runs in the agent: argv = direct base, gateway base, key, token, trials, concurrent, hold_s.
_CLIENT = r"""
const [direct, gw, key, token, trials, conc] = process.argv.slice(1);
const tools = [{name: 'Bash', description: 'run', input_schema: {type: 'object',
  properties: {command: {type: 'string'}}, required: ['command']}}];
async function call(base, auth, stream, main) {
  const t0 = performance.now();
  const body = {model: 'claude-sonnet-4-5', max_tokens: 16, stream,
    messages: [{role: 'user', content: 'hi'}], ...(main ? {tools} : {})};
  const r = await fetch(base + '/v1/messages', {method: 'POST', body: JSON.stringify(body),
    headers: {'x-api-key': auth, 'content-type': 'application/json',
              'anthropic-version': '2023-06-01'}});
  const reader = r.body.getReader();
  let first = null;
  for (;;) {
    const {done} = await reader.read();
    if (first === null) first = performance.now() - t0;
    if (done) break;
  }
  return {status: r.status, total: performance.now() - t0, first};
}
(async () => {
  const out = {direct: {whole: [], first: []}, gateway: {whole: [], first: []}, bad: 0};
  for (let i = 0; i < 5; i++) { await call(direct, key, false); await call(gw, token, false); }
  for (let i = 0; i < Number(trials); i++) {
    for (const [name, base, auth] of [['direct', direct, key], ['gateway', gw, token]]) {
      const whole = await call(base, auth, false);
      const streamed = await call(base, auth, true);
      if (whole.status !== 200 || streamed.status !== 200) out.bad++;
      out[name].whole.push(whole.total);
      out[name].first.push(streamed.first);
    }
  }
  const t0 = performance.now();
  const held = await Promise.all(Array.from({length: Number(conc)},
    () => call(gw, token, true, true).catch(e => ({status: 0, total: 0, first: 0}))));
  out.concurrent = {ok: held.filter(h => h.status === 200).length, n: held.length,
    wallMs: performance.now() - t0, slowestMs: Math.max(...held.map(h => h.total))};
  console.log(JSON.stringify(out));
})();
"""


def _docker(*args: str) -> str:
    return subprocess.run([DOCKER, *args], check=True, capture_output=True, text=True).stdout


def run(trials: int, concurrent: int, hold_s: float) -> dict[str, Any]:
    tag = f"pgwbench-{uuid.uuid4().hex[:6]}"
    network = f"{tag}-net"
    folder = Path(tempfile.mkdtemp(prefix=f"{tag}-"))
    _docker("network", "create", "--label", f"{tag}=1", network)
    standin = StandinContainer(f"{tag}-standin", network, {tag: "1"})
    service: BenchService | None = None
    load_before = load_average()
    try:
        standin.start()
        service = BenchService(
            {
                "DOCKER_NETWORK": network,
                "PARALLAX_INSTANCE": tag,
                "PARALLAX_SECRETS_DIR": str(folder / "secrets"),
                "PARALLAX_STATE_DIR": str(folder / "state"),
                "PARALLAX_GATEWAY": "true",
                "PARALLAX_GATEWAY_ANTHROPIC_URL": standin.base_url,
                "LOG_LEVEL": "WARNING",
            },
            folder / "service.log",
        ).start()
        tenant = Tenant(standin.base_url)
        api = httpx.Client(base_url=service.url, timeout=120)
        spawned = api.post(
            "/agents",
            json={
                "name": f"{tag}-agent",
                "type": "custom",
                "image": IMAGE,
                "credentials": {"anthropicKey": tenant.key},
                "resources": {"memory": "512m", "cpu": 1.0},
            },
        )
        spawned.raise_for_status()
        container = spawned.json()["containerName"]
        token = _docker(
            "exec", container, "parallax-exec", "sh", "-c", 'printf %s "$ANTHROPIC_API_KEY"'
        )
        tenant.queue(*[Reply(text="held", delay_s=hold_s) for _ in range(concurrent)])
        output = _docker(
            "exec",
            container,
            "node",
            "-e",
            _CLIENT,
            standin.agent_url,
            "http://parallax-gateway:8080/anthropic",
            tenant.key,
            token,
            str(trials),
            str(concurrent),
        )
        raw = json.loads(output)
        agent_id = spawned.json()["id"]
        counted = api.get(f"/agents/{agent_id}/model-usage").json()
        api.delete(f"/agents/{agent_id}", params={"force": "true"})
        return _summary(raw, counted, trials, concurrent, hold_s, load_before)
    finally:
        if service is not None:
            service.stop()
        for line in _docker("ps", "-aq", "--filter", f"label=parallax.instance={tag}").split():
            subprocess.run([DOCKER, "rm", "-f", line], capture_output=True, check=False)
        for line in _docker("ps", "-aq", "--filter", f"label=parallax.gateway.relay={tag}").split():
            subprocess.run([DOCKER, "rm", "-f", line], capture_output=True, check=False)
        standin.stop()
        for name in (network, f"{network}-internal"):
            subprocess.run([DOCKER, "network", "rm", name], capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _summary(
    raw: dict[str, Any],
    counted: dict[str, Any],
    trials: int,
    concurrent: int,
    hold_s: float,
    load_before: tuple[float, float, float],
) -> dict[str, Any]:
    figures = {
        path: {kind: Summary.of(raw[path][kind]) for kind in ("whole", "first")}
        for path in ("direct", "gateway")
    }
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "trials": trials,
        "failedCalls": raw["bad"],
        "directMs": {kind: s.median for kind, s in figures["direct"].items()},
        "gatewayMs": {kind: s.median for kind, s in figures["gateway"].items()},
        "gatewayP95Ms": {kind: s.p95 for kind, s in figures["gateway"].items()},
        "addedP50Ms": {
            kind: figures["gateway"][kind].median - figures["direct"][kind].median
            for kind in ("whole", "first")
        },
        "concurrent": {**raw["concurrent"], "holdS": hold_s, "asked": concurrent},
        "countedRequests": counted["requests"],
        "loadBefore": load_before,
        "loadAfter": load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__)
    parser.add_argument("--trials", type=int, default=200, help="calls per path and kind")
    parser.add_argument("--concurrent", type=int, default=200, help="streams held at once")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds each stream is held")
    args = parser.parse_args(argv)
    started = time.monotonic()
    result = run(args.trials, args.concurrent, args.hold)
    result["tookS"] = round(time.monotonic() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    added = result["addedP50Ms"]
    held = result["concurrent"]
    ok = added["whole"] <= 2.0 and added["first"] <= 5.0 and held["ok"] == held["n"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
