"""The model gateway's pure parts: usage read from each provider's answers (split anywhere),
tokens, key handling, refusals in each provider's format, prices, egress rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parallax_docker.egress import PROXY_URL, allow_list, host_allowed, plan_egress
from parallax_docker.errors import ConfigError, ValidationError
from parallax_docker.models import EgressAllow
from parallax_docker.runtime.gateway.meter import Caller, Meter, cost_of, price_table
from parallax_docker.runtime.gateway.providers import (
    agent_env,
    presented_token,
    refusal,
    split_keys,
)
from parallax_docker.runtime.gateway.proxy import parse_target
from parallax_docker.runtime.gateway.tokens import TokenBook
from parallax_docker.runtime.gateway.usage import Usage, UsageReader
from tests.support.tamper import with_char_changed


def _sse(*events: object) -> bytes:
    return b"".join(b"event: x\ndata: " + json.dumps(e).encode() + b"\n\n" for e in events)


STREAMS = {
    "anthropic": _sse(
        {
            "type": "message_start",
            "message": {
                "model": "claude-sonnet-4-5",
                "usage": {"input_tokens": 321, "output_tokens": 1},
            },
        },
        {"type": "content_block_delta", "delta": {"text": "hi"}},
        {"type": "message_delta", "usage": {"output_tokens": 17}},
        {"type": "message_stop"},
    ),
    "responses": _sse(
        {"type": "response.created", "response": {"model": "gpt-5"}},
        {
            "type": "response.completed",
            "response": {"model": "gpt-5", "usage": {"input_tokens": 321, "output_tokens": 17}},
        },
    ),
    "chat": _sse(
        {"choices": [{"delta": {"content": "hi"}}], "model": "gpt-4o"},
        {"choices": [], "usage": {"prompt_tokens": 321, "completion_tokens": 17}},
    )
    + b"data: [DONE]\n\n",
    "gemini": _sse(
        {"candidates": [], "usageMetadata": {"promptTokenCount": 300}},
        {
            "candidates": [],
            "modelVersion": "gemini-2.5-pro",
            "usageMetadata": {
                "promptTokenCount": 321,
                "candidatesTokenCount": 12,
                "thoughtsTokenCount": 5,
            },
        },
    ),
}


@pytest.mark.parametrize("protocol", sorted(STREAMS))
@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_usage_is_read_from_a_stream_split_anywhere(protocol: str, chunk: int) -> None:
    reader = UsageReader(streamed=True)
    data = STREAMS[protocol]
    for start in range(0, len(data), chunk):
        reader.feed(data[start : start + chunk])
    usage = reader.close()
    assert (usage.input_tokens, usage.output_tokens, usage.seen) == (321, 17, True)


def test_usage_is_read_from_a_whole_answer_and_a_gemini_array() -> None:
    whole = UsageReader(streamed=False)
    whole.feed(
        json.dumps({"model": "m", "usage": {"input_tokens": 5, "output_tokens": 2}}).encode()
    )
    assert (whole.close().input_tokens, whole.usage.output_tokens) == (5, 2)
    array = UsageReader(streamed=False)
    array.feed(
        json.dumps(
            [
                {"usageMetadata": {"promptTokenCount": 1}},
                {"usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3}},
            ]
        ).encode()
    )
    assert (array.close().input_tokens, array.usage.output_tokens) == (9, 3)


def test_an_answer_without_usage_counts_nothing() -> None:
    reader = UsageReader(streamed=False)
    reader.feed(b'{"input_tokens": 40}')  # count_tokens: not a use of the model
    assert reader.close().seen is False


def test_a_token_names_its_agent_and_cannot_be_moved_or_forged(tmp_path: Path) -> None:
    book = TokenBook(tmp_path / "key")
    book.load()
    token = book.issue("agent-1")
    assert book.agent_of(token) == "agent-1"
    assert book.agent_of(token.replace("agent-1", "agent-2")) is None
    assert book.agent_of(with_char_changed(token, -1)) is None
    assert book.agent_of("sk-ant-real-key") is None
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600
    # Another service start reads the same key: tokens survive a restart.
    again = TokenBook(tmp_path / "key")
    again.load()
    assert again.agent_of(token) == "agent-1"


def test_provider_keys_leave_the_env_and_each_cli_points_at_the_gateway() -> None:
    env = {
        "ANTHROPIC_API_KEY": "sk-a",
        "OPENAI_API_KEY": "sk-o",
        "OTHER": "x",
        "ANTHROPIC_BASE_URL": "http://elsewhere",
    }
    keys = split_keys(env)
    assert keys == {"anthropic": "sk-a", "openai": "sk-o"}
    out = agent_env(env, set(keys), "pgw1.a.b")
    assert "sk-a" not in out.values() and "sk-o" not in out.values()
    assert out["ANTHROPIC_API_KEY"] == "pgw1.a.b" and out["OTHER"] == "x"
    assert out["ANTHROPIC_BASE_URL"] == "http://parallax-gateway:8080/anthropic"
    assert (
        out["OPENAI_BASE_URL"]
        == out["OPENAI_API_BASE"]
        == ("http://parallax-gateway:8080/openai/v1")
    )
    assert "GOOGLE_GEMINI_BASE_URL" not in out


def test_the_token_is_found_where_each_cli_sends_its_key() -> None:
    assert presented_token({"x-api-key": "t1"}, {}) == "t1"
    assert presented_token({"authorization": "Bearer t2"}, {}) == "t2"
    assert presented_token({"x-goog-api-key": "t3"}, {}) == "t3"
    assert presented_token({}, {"key": "t4"}) == "t4"
    assert presented_token({}, {}) is None


def test_refusals_are_in_each_providers_error_format() -> None:
    anthropic = json.loads(refusal("anthropic", 400, "BUDGET_EXCEEDED", "spent"))
    assert anthropic["type"] == "error"
    assert anthropic["error"]["type"] == "invalid_request_error"
    assert anthropic["error"]["message"].startswith("BUDGET_EXCEEDED")
    openai = json.loads(refusal("openai", 403, "BUDGET_EXCEEDED", "spent"))
    assert openai["error"]["code"] == "insufficient_quota"
    gemini = json.loads(refusal("gemini", 403, "BUDGET_EXCEEDED", "spent"))
    assert gemini["error"]["status"] == "PERMISSION_DENIED"


def test_prices_by_longest_prefix_and_operators_override() -> None:
    table = price_table('{"claude-sonnet-4-5": [1, 2]}')
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, model="claude-sonnet-4-5-x")
    assert cost_of(usage, table) == 3.0
    assert cost_of(Usage(10, 10, "claude-sonnet-4"), table) == pytest.approx(18e-5)
    assert cost_of(Usage(10, 10, "unknown-model"), table) == 0.0
    with pytest.raises(ConfigError):
        price_table('{"m": "free"}')


def test_the_meter_counts_per_agent_execution_and_provider() -> None:
    meter = Meter(price_table(None))
    caller = Caller("a1", "ex1")
    meter.record(caller, "anthropic", Usage(10, 2, "claude-haiku-4"))
    meter.record(Caller("a2", "ex1"), "openai", Usage(5, 1, "gpt-5"))
    assert meter.of_agent("a1").tokens == 12
    assert meter.of_execution("ex1").requests == 2
    assert set(meter.of_execution("ex1").by_provider) == {"anthropic", "openai"}
    meter.refused("budget", caller)
    assert meter.of_agent("a1").refused == 1 and meter.refusals == {"budget": 1}


def test_egress_hosts_match_exactly_or_below_a_wildcard_domain() -> None:
    allowed = ("pypi.org", "*.npmjs.org")
    assert host_allowed("pypi.org", allowed) and host_allowed("PyPI.org.", allowed)
    assert host_allowed("registry.npmjs.org", allowed)
    assert not host_allowed("npmjs.org", allowed)
    assert not host_allowed("evilnpmjs.org", allowed)
    assert not host_allowed("pypi.org.evil.com", allowed)


def test_egress_choices_pick_the_network_and_the_proxy() -> None:
    network, env = plan_egress(EgressAllow(allow=["a.b"]), None, "net", gateway=True)
    assert (network.name, network.internal) == ("net-internal", True)
    assert env["HTTPS_PROXY"] == PROXY_URL and env["NO_PROXY"] == "parallax-gateway"
    assert plan_egress("none", None, "net", gateway=False)[0].is_none
    assert plan_egress("open", "mine", "net", gateway=False)[0].name == "mine"
    assert allow_list("models-only") == () and allow_list("open") is None
    with pytest.raises(ValidationError):
        plan_egress("models-only", None, "net", gateway=False)
    with pytest.raises(ValidationError):
        plan_egress(EgressAllow(allow=["a.b"]), "mine", "net", gateway=True)


def test_proxy_targets_are_read_from_connect_and_absolute_requests() -> None:
    assert parse_target("CONNECT", "pypi.org:443") == ("pypi.org", 443)
    assert parse_target("GET", "http://a.test:8080/x") == ("a.test", 8080)
    assert parse_target("GET", "http://a.test/x") == ("a.test", 80)
    assert parse_target("GET", "/x") is None
    assert parse_target("CONNECT", "nohost") is None
