"""Settings from the environment (parallax_docker.config.load_settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from parallax_docker.config import Settings, load_settings
from parallax_docker.errors import ConfigError
from parallax_docker.resources import NANO


def test_load_settings_defaults_the_port_to_3200() -> None:
    assert load_settings(environ={}).port == 3200


def test_load_settings_defaults_the_host_to_loopback() -> None:
    assert load_settings(environ={}).host == "127.0.0.1"


def test_load_settings_defaults_the_docker_socket() -> None:
    assert load_settings(environ={}).docker_socket == "/var/run/docker.sock"


def test_load_settings_defaults_the_network_to_parallax_agents() -> None:
    assert load_settings(environ={}).docker_network == "parallax-agents"


def test_load_settings_defaults_memory_to_512m() -> None:
    settings = load_settings(environ={})
    assert settings.default_memory == "512m"
    assert settings.default_memory_bytes == 512 * 1024**2


def test_load_settings_defaults_cpu_to_half_a_core() -> None:
    settings = load_settings(environ={})
    assert settings.default_cpu == "0.5"
    assert settings.default_nano_cpus == NANO // 2


def test_load_settings_defaults_the_log_level_to_info() -> None:
    assert load_settings(environ={}).log_level == "INFO"


def test_load_settings_has_no_allowed_host_paths_by_default() -> None:
    assert load_settings(environ={}).allowed_host_paths == ()


def test_load_settings_reads_the_spec_names_bare() -> None:
    settings = load_settings(
        environ={
            "PORT": "4000",
            "HOST": "0.0.0.0",
            "DOCKER_SOCKET": "/run/other.sock",
            "DOCKER_NETWORK": "agents-net",
            "DEFAULT_MEMORY": "1Gi",
            "DEFAULT_CPU": "500m",
            "LOG_LEVEL": "DEBUG",
        }
    )
    assert (settings.port, settings.host, settings.docker_socket) == (
        4000,
        "0.0.0.0",
        "/run/other.sock",
    )
    assert settings.docker_network == "agents-net"
    assert settings.default_memory_bytes == 1024**3
    assert settings.default_nano_cpus == NANO // 2
    assert settings.log_level == "DEBUG"


def test_load_settings_reads_spec_names_with_the_parallax_prefix() -> None:
    settings = load_settings(environ={"PARALLAX_PORT": "4001", "PARALLAX_DOCKER_NETWORK": "n2"})
    assert (settings.port, settings.docker_network) == (4001, "n2")


def test_load_settings_prefers_the_prefixed_name_over_the_bare_one() -> None:
    assert load_settings(environ={"PORT": "4000", "PARALLAX_PORT": "4001"}).port == 4001


def test_load_settings_reads_prefixed_only_settings() -> None:
    settings = load_settings(
        environ={
            "PARALLAX_PIDS_LIMIT": "128",
            "PARALLAX_IMAGE_TAG": "v1",
            "PARALLAX_STOP_GRACE_S": "2",
        }
    )
    assert (settings.pids_limit, settings.image_tag, settings.stop_grace_s) == (128, "v1", 2.0)


def test_load_settings_ignores_unrelated_variables() -> None:
    assert load_settings(environ={"PATH": "/bin", "PIDS_LIMIT": "1"}).pids_limit == 512


def test_load_settings_refuses_an_unknown_parallax_variable_and_names_it() -> None:
    with pytest.raises(ConfigError, match="PARALLAX_FOO") as info:
        load_settings(environ={"PARALLAX_FOO": "1"})
    assert info.value.code == "CONFIG_ERROR"


def test_load_settings_names_every_unknown_parallax_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"PARALLAX_FOO": "1", "PARALLAX_DEFAULT_MEMROY": "1g"})
    assert "PARALLAX_FOO" in info.value.message
    assert "PARALLAX_DEFAULT_MEMROY" in info.value.message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "0"),
        ("PORT", "70000"),
        ("LOG_LEVEL", "LOUD"),
        ("DOCKER_SOCKET", "docker.sock"),
        ("PARALLAX_PIDS_LIMIT", "1"),
        ("PARALLAX_LOG_MAX_SIZE", "10 megabytes"),
        ("PARALLAX_IMAGE_TAG", "bad tag"),
        ("PARALLAX_ALLOWED_HOST_PATHS", "relative/dir"),
        ("PARALLAX_READY_TIMEOUT_S", "-1"),
        ("PARALLAX_MAX_BODY_BYTES", "10"),
    ],
)
def test_load_settings_refuses_an_invalid_value_with_a_config_error(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(environ={name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEFAULT_MEMORY", "lots"),
        ("DEFAULT_MEMORY", "1m"),
        ("DEFAULT_CPU", "0"),
        ("DEFAULT_CPU", "abc"),
        ("PARALLAX_TMPFS_SIZE", "big"),
    ],
)
def test_load_settings_refuses_an_unparseable_resource_default_with_a_config_error(
    name: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(environ={name: value})


def test_load_settings_refuses_a_cpu_too_large_to_compute_with_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DEFAULT_CPU"):
        load_settings(environ={"DEFAULT_CPU": "1e999999999"})


def test_load_settings_splits_allowed_host_paths_on_commas(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    settings = load_settings(
        environ={"PARALLAX_ALLOWED_HOST_PATHS": f"{tmp_path / 'a'}, {tmp_path / 'b'} ,"}
    )
    assert settings.allowed_host_paths == (tmp_path / "a", tmp_path / "b")


def test_load_settings_resolves_symlinks_in_allowed_host_paths(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    settings = load_settings(environ={"PARALLAX_ALLOWED_HOST_PATHS": str(tmp_path / "link")})
    assert settings.allowed_host_paths == (tmp_path.resolve() / "real",)


def test_load_settings_applies_keyword_overrides_over_the_environment() -> None:
    assert load_settings(environ={"PORT": "4000"}, port=4002).port == 4002


def test_load_settings_reads_the_process_environment_when_given_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARALLAX_PIDS_LIMIT", "99")
    assert load_settings().pids_limit == 99


def test_settings_are_frozen() -> None:
    settings = load_settings(environ={})
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]


def test_image_for_joins_prefix_type_and_tag() -> None:
    assert load_settings(environ={}).image_for("claude") == "parallax/agent-claude:latest"


def test_image_for_uses_the_configured_prefix_and_tag() -> None:
    settings = load_settings(
        environ={"PARALLAX_IMAGE_PREFIX": "registry.local/px-", "PARALLAX_IMAGE_TAG": "1.2"}
    )
    assert settings.image_for("codex") == "registry.local/px-codex:1.2"


def test_settings_refuse_unknown_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        Settings.model_validate({"prot": 1})
