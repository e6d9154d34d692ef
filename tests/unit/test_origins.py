"""Which Host names and Origins the guard lets through (origins.py)."""

from __future__ import annotations

import pytest

from parallax_docker.origins import OriginPolicy, Verdict, parse_authority, parse_origin

POLICY = OriginPolicy(
    allowed_hosts=["parallax.internal", "::2"], allowed_origins=["http://ui.test:8080"]
)


def judge(
    policy: OriginPolicy = POLICY, method: str = "POST", target: str = "/agents", **headers: str
) -> Verdict:
    return policy.judge(
        method=method,
        headers={k.replace("_", "-").lower(): [v] for k, v in headers.items()},
        target=target,
    )


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LocalHost:3200",
        "127.0.0.1",
        "127.9.9.9:80",
        "[::1]",
        "[::1]:3200",
        "parallax.internal",
        "parallax.internal:443",
        "[::2]:3200",
    ],
)
def test_loopback_and_listed_hosts_are_served(host: str) -> None:
    assert judge(host=host) is Verdict.SERVE


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "evil.localhost",
        "localhost.",
        "127.1",
        "0x7f000001",
        "2130706433",
        "127.000.000.001",
        "[::ffff:127.0.0.1]",
        "::1",
        "localhost:0",
        "localhost:65536",
        "localhost:",
        "local host",
        "user@localhost",
        "parallax.internal.evil",
        "",
        "[::1",
        "10.0.0.1",
    ],
)
def test_other_hosts_are_refused(host: str) -> None:
    assert judge(host=host) is Verdict.BAD_HOST


def test_a_request_without_a_host_or_with_two_is_refused() -> None:
    assert POLICY.judge(method="GET", headers={}) is Verdict.BAD_HOST
    two = {"host": ["localhost", "evil.example"]}
    assert POLICY.judge(method="GET", headers=two) is Verdict.BAD_HOST


def test_a_specific_bound_address_is_its_own_name_and_a_wildcard_is_not() -> None:
    assert judge(OriginPolicy(bound_host="192.0.2.7"), host="192.0.2.7:3200") is Verdict.SERVE
    assert judge(OriginPolicy(bound_host="2001:db8::7"), host="[2001:db8::7]") is Verdict.SERVE
    for wildcard in ("0.0.0.0", "::"):
        assert judge(OriginPolicy(bound_host=wildcard), host="192.0.2.7") is Verdict.BAD_HOST


def test_an_absolute_form_target_must_name_an_allowed_host() -> None:
    assert judge(host="localhost", target="http://evil.example/agents") is Verdict.BAD_HOST
    assert judge(host="localhost", target="http://127.0.0.1:3200/agents") is Verdict.SERVE


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "DELETE", "PUT", "OPTIONS"])
@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "null", "http://localhost:1", "https://localhost:3201", "junk"],
)
def test_a_foreign_origin_is_refused_on_every_method(method: str, origin: str) -> None:
    assert judge(method=method, host="localhost:3200", origin=origin) is Verdict.BAD_ORIGIN


def test_the_services_own_origin_is_served() -> None:
    assert judge(host="localhost:3200", origin="http://localhost:3200") is Verdict.SERVE
    assert judge(host="127.0.0.1", origin="http://127.0.0.1:80") is Verdict.SERVE
    assert judge(host="[::1]:3200", origin="http://[::1]:3200") is Verdict.SERVE
    # Behind a TLS proxy that passes the Host on: the page is the service's own too.
    assert judge(host="localhost", origin="https://localhost") is Verdict.SERVE


def test_an_allowed_origin_gets_cors_and_its_preflight_is_answered() -> None:
    assert judge(host="localhost", origin="http://ui.test:8080") is Verdict.SERVE_CORS
    preflight = judge(
        method="OPTIONS",
        host="localhost",
        origin="HTTP://UI.TEST:8080",
        access_control_request_method="POST",
    )
    assert preflight is Verdict.PREFLIGHT


@pytest.mark.parametrize("site", ["cross-site", "same-site", "Cross-Site"])
def test_a_request_from_another_site_without_origin_is_refused(site: str) -> None:
    assert judge(method="GET", host="localhost", sec_fetch_site=site) is Verdict.BAD_ORIGIN


@pytest.mark.parametrize("site", ["same-origin", "none"])
def test_same_origin_and_typed_urls_are_served(site: str) -> None:
    assert judge(method="GET", host="localhost", sec_fetch_site=site) is Verdict.SERVE


def test_a_non_browser_client_is_served() -> None:
    assert judge(host="127.0.0.1:3200", content_type="application/json") is Verdict.SERVE


@pytest.mark.parametrize("text", ["*", "null", "http://x/path", "ftp://x", "http://u@x", "x"])
def test_origins_that_are_not_scheme_host_port_do_not_parse(text: str) -> None:
    assert parse_origin(text) is None


def test_authorities_parse_names_addresses_and_ports() -> None:
    assert parse_authority("[::1]:80") is not None
    assert parse_authority("Example.COM:8080") == parse_authority("example.com:8080")
    assert parse_authority("a..b") is None
