"""Memory, CPU, name, env-key and volume parsing (parallax_docker.resources)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parallax_docker.errors import LimitAboveHostError, ParallaxError, ValidationError
from parallax_docker.resources import (
    MIN_MEMORY_BYTES,
    NANO,
    VolumeRequest,
    check_within_host,
    parse_cpu,
    parse_memory,
    parse_volume,
    validate_env_key,
    validate_name,
)

KIB, MIB, GIB = 1024, 1024**2, 1024**3

# -- memory -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512m", 512 * MIB),
        ("512mb", 512 * MIB),
        ("1g", GIB),
        ("1gb", GIB),
        ("8192k", 8 * MIB),
        ("8192kb", 8 * MIB),
        ("7340032b", 7 * MIB),
        ("7340032", 7 * MIB),
    ],
)
def test_parse_memory_reads_docker_units(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["512MB", "512Mb", "512mB", "1GB", "8192KB", "7340032B"])
def test_parse_memory_reads_docker_units_in_any_case(text: str) -> None:
    assert parse_memory(text) == parse_memory(text.lower())


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.5g", GIB + GIB // 2), ("0.5g", GIB // 2), ("6.5m", 6 * MIB + MIB // 2)],
)
def test_parse_memory_reads_decimal_amounts(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("256Mi", 256 * MIB), ("1Gi", GIB), ("8192Ki", 8 * MIB), ("1.5Gi", GIB + GIB // 2)],
)
def test_parse_memory_reads_kubernetes_binary_units(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7M", 7 * MIB), ("1G", 1024 * MIB), ("7000K", 7000 * 1024)],
)
def test_parse_memory_reads_upper_case_docker_units_as_binary(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


def test_parse_memory_takes_an_integer_as_bytes() -> None:
    assert parse_memory(64 * MIB) == 64 * MIB


def test_parse_memory_ignores_surrounding_whitespace() -> None:
    assert parse_memory("  512m ") == 512 * MIB


def test_parse_memory_accepts_dockers_minimum_of_6_mib() -> None:
    assert parse_memory("6m") == MIN_MEMORY_BYTES


@pytest.mark.parametrize("value", ["5m", "6291455", 6 * MIB - 1, "1k", "0", 0, "5.9m"])
def test_parse_memory_refuses_values_below_6_mib(value: str | int) -> None:
    with pytest.raises(ValidationError, match="minimum") as info:
        parse_memory(value)
    assert info.value.code == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "text",
    ["", " ", "lots", "-512m", "1.5.5g", "10x", "512 mega", "m", ".5g", "1,5g", "0x10m", "1e9"],
)
def test_parse_memory_refuses_text_that_is_not_a_size(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_memory(text)
    assert info.value.code == "VALIDATION_ERROR"


@pytest.mark.parametrize("unit", ["ki", "mi", "gi", "KI", "x", "pb", "Pi"])
def test_parse_memory_refuses_unknown_units(unit: str) -> None:
    with pytest.raises(ValidationError, match="unknown unit"):
        parse_memory("512" + unit)


def test_parse_memory_refuses_a_negative_integer() -> None:
    with pytest.raises(ValidationError):
        parse_memory(-512 * MIB)


@pytest.mark.parametrize("value", [True, False])
def test_parse_memory_refuses_booleans(value: bool) -> None:
    with pytest.raises(ValidationError, match="boolean"):
        parse_memory(value)


def test_parse_memory_refuses_a_number_too_large_to_compute() -> None:
    with pytest.raises(ValidationError):
        parse_memory("9" * 1_000_001 + "m")


_UNITS = {"b": 1, "k": KIB, "m": MIB, "g": GIB, "Ki": KIB, "Mi": MIB, "Gi": GIB}


@given(
    amount=st.integers(min_value=1, max_value=2**20),
    unit=st.sampled_from(sorted(_UNITS)),
)
def test_parse_memory_round_trips_integer_amounts_with_units(amount: int, unit: str) -> None:
    size = amount * _UNITS[unit]
    if size < MIN_MEMORY_BYTES:
        with pytest.raises(ValidationError):
            parse_memory(f"{amount}{unit}")
    else:
        assert parse_memory(f"{amount}{unit}") == size


@given(st.text(max_size=40))
def test_parse_memory_raises_only_validation_error_for_any_text(text: str) -> None:
    try:
        size = parse_memory(text)
    except ValidationError:
        return
    assert size >= MIN_MEMORY_BYTES


# -- cpu --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5, NANO // 2),
        (1.0, NANO),
        (2, 2 * NANO),
        ("0.5", NANO // 2),
        ("2", 2 * NANO),
        ("500m", NANO // 2),
        ("1500m", NANO + NANO // 2),
        ("0.01", NANO // 100),
        (" 0.25 ", NANO // 4),
    ],
)
def test_parse_cpu_returns_nano_cpus(value: str | float, expected: int) -> None:
    assert parse_cpu(value) == expected


@pytest.mark.parametrize("value", [0, 0.0, "0", "0.009", 0.001, "9m", "-1", -0.5])
def test_parse_cpu_refuses_values_below_a_hundredth_of_a_core(value: str | float) -> None:
    with pytest.raises(ValidationError, match="minimum"):
        parse_cpu(value)


@pytest.mark.parametrize("value", ["abc", "", "m", "0.5.5", "1 core", "half", "0x1"])
def test_parse_cpu_refuses_text_that_is_not_a_number(value: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_cpu(value)
    assert info.value.code == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf"), "NaN", "inf", "Infinity", "sNaN", "nanm"]
)
def test_parse_cpu_refuses_non_finite_numbers(value: str | float) -> None:
    with pytest.raises(ValidationError):
        parse_cpu(value)


@pytest.mark.parametrize("value", [True, False])
def test_parse_cpu_refuses_booleans(value: bool) -> None:
    with pytest.raises(ValidationError, match="boolean"):
        parse_cpu(value)


@pytest.mark.parametrize("value", ["1e999999999", "1e999999999m"])
def test_parse_cpu_refuses_an_exponent_too_large_to_compute(value: str) -> None:
    with pytest.raises(ValidationError):
        parse_cpu(value)


@given(st.text(max_size=40))
def test_parse_cpu_raises_only_validation_error_for_any_short_text(text: str) -> None:
    try:
        nano = parse_cpu(text)
    except ValidationError:
        return
    assert nano >= NANO // 100


# -- host limits ------------------------------------------------------------------------------


def test_check_within_host_accepts_limits_the_host_has() -> None:
    check_within_host(GIB, NANO, host_memory=2 * GIB, host_cpus=2)


def test_check_within_host_accepts_exactly_the_hosts_capacity() -> None:
    check_within_host(2 * GIB, 2 * NANO, host_memory=2 * GIB, host_cpus=2)


def test_check_within_host_refuses_more_memory_than_the_host_has() -> None:
    with pytest.raises(LimitAboveHostError, match="memory") as info:
        check_within_host(4 * GIB, NANO, host_memory=2 * GIB, host_cpus=2)
    assert info.value.code == "LIMIT_ABOVE_HOST"


def test_check_within_host_refuses_more_cpus_than_the_host_has() -> None:
    with pytest.raises(LimitAboveHostError, match="cpu") as info:
        check_within_host(GIB, 3 * NANO, host_memory=2 * GIB, host_cpus=2)
    assert info.value.code == "LIMIT_ABOVE_HOST"


def test_check_within_host_skips_the_check_when_the_host_size_is_unknown() -> None:
    check_within_host(64 * GIB, 64 * NANO, host_memory=0, host_cpus=0)


# -- env keys and names -----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["PATH", "_x", "ANTHROPIC_API_KEY", "a1", "A" * 255])
def test_validate_env_key_accepts_variable_names(key: str) -> None:
    validate_env_key(key)


@pytest.mark.parametrize(
    "key", ["", "1ABC", "A-B", "A B", "A=B", "A\nB", "Ä", "A.B", "$A", "A" * 256]
)
def test_validate_env_key_refuses_what_is_not_a_variable_name(key: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_env_key(key)
    assert info.value.code == "VALIDATION_ERROR"


def test_validate_env_key_refuses_a_trailing_newline() -> None:
    with pytest.raises(ValidationError):
        validate_env_key("API_KEY\n")


@pytest.mark.parametrize("name", ["a", "agent-1", "Agent_1.x", "0abc", "a" * 63])
def test_validate_name_accepts_dockers_name_rule(name: str) -> None:
    validate_name("name", name)


@pytest.mark.parametrize(
    "name", ["", "-a", "_a", ".a", "a b", "a/b", "a:b", "a\x00", "é", "a" * 64, "a\nb"]
)
def test_validate_name_refuses_names_docker_would_refuse(name: str) -> None:
    with pytest.raises(ValidationError):
        validate_name("name", name)


def test_validate_name_refuses_a_trailing_newline() -> None:
    with pytest.raises(ValidationError):
        validate_name("name", "agent\n")


def test_validate_name_honours_a_custom_max_length() -> None:
    validate_name("id", "a" * 10, max_length=10)
    with pytest.raises(ValidationError, match="up to 10"):
        validate_name("id", "a" * 11, max_length=10)


def test_validate_name_does_not_echo_a_long_value_in_full() -> None:
    with pytest.raises(ValidationError) as info:
        validate_name("name", "x" * 500 + "!")
    assert "x" * 81 not in info.value.message


# -- volumes ----------------------------------------------------------------------------------


def test_parse_volume_reads_a_bind_mount_as_read_write_by_default() -> None:
    assert parse_volume("/srv/project:/workspace/project") == VolumeRequest(
        source="/srv/project", target="/workspace/project", read_only=False, is_bind=True
    )


def test_parse_volume_reads_the_ro_mode() -> None:
    assert parse_volume("/srv/data:/data:ro").read_only is True


def test_parse_volume_reads_the_rw_mode() -> None:
    assert parse_volume("/srv/data:/data:rw").read_only is False


def test_parse_volume_reads_a_named_volume() -> None:
    assert parse_volume("cache-1:/cache:ro") == VolumeRequest(
        source="cache-1", target="/cache", read_only=True, is_bind=False
    )


@pytest.mark.parametrize("mode", ["z", "Z", "rprivate", "shared", "RO", "ro,z", "nocopy", ""])
def test_parse_volume_refuses_modes_other_than_ro_and_rw(mode: str) -> None:
    with pytest.raises(ValidationError, match="mode"):
        parse_volume(f"/srv/data:/data:{mode}")


@pytest.mark.parametrize("entry", ["/a:/b:ro:z", "/a:/b:ro:", "a:b:c:d:e", "/a"])
def test_parse_volume_refuses_anything_but_two_or_three_fields(entry: str) -> None:
    with pytest.raises(ValidationError, match="must look like"):
        parse_volume(entry)


@pytest.mark.parametrize(
    "source", ["./project", "../etc", "project/sub", "~/project", "", ".hidden", "-v"]
)
def test_parse_volume_refuses_relative_sources(source: str) -> None:
    with pytest.raises(ValidationError, match="relative"):
        parse_volume(f"{source}:/data")


@pytest.mark.parametrize("target", ["data", "./data", "", "~/data"])
def test_parse_volume_refuses_relative_targets(target: str) -> None:
    with pytest.raises(ValidationError, match="absolute"):
        parse_volume(f"/srv/data:{target}")


@pytest.mark.parametrize("entry", ["/srv\x00:/data", "/srv:/data\n", "/srv\n/x:/data"])
def test_parse_volume_refuses_nul_and_newline(entry: str) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        parse_volume(entry)


@pytest.mark.parametrize("char", ["\r", "\t", "\x1b", "\x7f", "\x85"])
def test_parse_volume_refuses_other_control_characters(char: str) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        parse_volume(f"/srv/data{char}:/data")


def test_parse_volume_refuses_an_empty_entry() -> None:
    with pytest.raises(ValidationError, match="non-empty"):
        parse_volume("")


def test_parse_volume_refuses_a_named_volume_name_that_is_too_long() -> None:
    with pytest.raises(ValidationError):
        parse_volume("v" * 129 + ":/data")


@given(st.text(max_size=60))
def test_parse_volume_raises_only_validation_error_for_any_text(entry: str) -> None:
    try:
        request = parse_volume(entry)
    except ParallaxError as exc:
        assert isinstance(exc, ValidationError)
        return
    assert request.target.startswith("/")
