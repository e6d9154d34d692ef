"""The image catalog: types, order, versions and build arguments."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from parallax_docker.cli.images import Target
from parallax_docker.config import load_settings
from parallax_docker.errors import ValidationError
from parallax_docker.images import catalog

IMAGES_DIR = Path(__file__).resolve().parents[2] / "images"


def test_resolve_nothing_means_every_image_in_build_order() -> None:
    assert catalog.resolve_types([]) == ["base", "claude", "codex", "gemini", "aider", "echo"]


def test_resolve_all_is_every_image() -> None:
    assert catalog.resolve_types(["all"]) == list(catalog.TYPES)


def test_resolve_adds_the_base_before_an_agent_image() -> None:
    assert catalog.resolve_types(["gemini", "claude"]) == ["base", "claude", "gemini"]


def test_resolve_base_alone_is_only_the_base() -> None:
    assert catalog.resolve_types(["base"]) == ["base"]


def test_resolve_refuses_an_unknown_type() -> None:
    with pytest.raises(ValidationError, match="unknown image type 'cursor'"):
        catalog.resolve_types(["cursor"])


def test_image_names_come_from_the_settings() -> None:
    settings = load_settings({}, image_prefix="acme/agent-", image_tag="v2")
    assert catalog.image_name(settings, "claude") == "acme/agent-claude:v2"
    assert catalog.image_name(load_settings({}), "base") == "parallax/agent-base:latest"


def test_version_override_parses_type_and_exact_version() -> None:
    assert catalog.parse_version_overrides(["claude=2.1.300", "aider = 0.86.1"]) == {
        "claude": "2.1.300",
        "aider": "0.86.1",
    }


@pytest.mark.parametrize("value", ["claude", "claude=", "=1.2.3", "claude=latest", "claude=^2.1"])
def test_version_override_refuses_anything_but_type_equals_exact_version(value: str) -> None:
    with pytest.raises(ValidationError):
        catalog.parse_version_overrides([value])


def test_version_override_refuses_an_image_without_a_cli_version() -> None:
    with pytest.raises(ValidationError, match="no CLI version"):
        catalog.parse_version_overrides(["echo=1.0.0"])


def test_base_build_args_carry_the_debian_image_and_keep_ca() -> None:
    args = catalog.build_args(
        catalog.recipe_for("base"), base_image="debian:bookworm-slim", cli_versions={}, keep_ca=True
    )
    assert args == {"BASE_IMAGE": "debian:bookworm-slim", "KEEP_CA": "1"}


def test_agent_build_args_pin_the_default_or_overridden_cli_version() -> None:
    recipe = catalog.recipe_for("codex")
    default = catalog.build_args(recipe, base_image="b", cli_versions={}, keep_ca=False)
    chosen = catalog.build_args(
        recipe, base_image="b", cli_versions={"codex": "0.1.0"}, keep_ca=False
    )
    assert default == {"BASE_IMAGE": "b", "CLI_VERSION": recipe.default_version}
    assert chosen["CLI_VERSION"] == "0.1.0"


@pytest.mark.parametrize("recipe", catalog.RECIPES, ids=lambda r: r.type)
def test_dockerfile_defaults_match_the_catalog(recipe: catalog.ImageRecipe) -> None:
    text = (IMAGES_DIR / recipe.dockerfile).read_text()
    defaults = set(re.findall(r"^ARG CLI_VERSION=(\S+)$", text, flags=re.MULTILINE))
    if recipe.default_version is None:
        assert defaults == set()
    else:
        assert defaults == {recipe.default_version}
    assert f"parallax.image.type={recipe.type}" in text
    assert f"parallax.cli.name={recipe.cli_name}" in text


def test_cli_targets_are_the_catalog_types_and_all() -> None:
    assert [t.value for t in Target] == [*catalog.TYPES, catalog.ALL]
