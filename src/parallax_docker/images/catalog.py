"""The agent images the project builds: their types, Dockerfiles, pinned CLI versions and order.

Pure data and pure functions. Image names come from the settings (``image_prefix`` and
``image_tag``), so a deployment that renames its images builds and finds them under those names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from parallax_docker.config import Settings
from parallax_docker.errors import ValidationError

# The Debian 12 image the base is built FROM when a registry can serve it, and the name the
# debootstrapped stand-in is imported under when none can.
DEBIAN_IMAGE = "debian:bookworm-slim"
ROOTFS_IMAGE = "parallax/debian-rootfs:bookworm"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"

LABEL_TYPE = "parallax.image.type"
LABEL_CLI_NAME = "parallax.cli.name"
LABEL_CLI_VERSION = "parallax.cli.version"
LABEL_USER = "parallax.image.user"

ALL = "all"
# npm-style exact versions (1.2.3, 1.2.3-beta.1); ranges and tags are refused because the
# version becomes the image's label and the build checks the installed one against it.
_EXACT_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class ImageRecipe:
    """How one image type is built."""

    type: str
    dockerfile: str
    cli_name: str
    package: str | None = None
    default_version: str | None = None
    depends_on: str | None = None

    @property
    def has_cli_version(self) -> bool:
        """Whether the CLI version is a build argument (CLI_VERSION) that can be overridden."""
        return self.default_version is not None


# Build order: the base first, then the images FROM it. Defaults must match the Dockerfiles'
# ARG CLI_VERSION (a unit test holds them together).
RECIPES: tuple[ImageRecipe, ...] = (
    ImageRecipe("base", "Dockerfile.base", "node"),
    ImageRecipe(
        "claude",
        "Dockerfile.claude",
        "claude",
        package="@anthropic-ai/claude-code",
        default_version="2.1.332",
        depends_on="base",
    ),
    ImageRecipe(
        "codex",
        "Dockerfile.codex",
        "codex",
        package="@openai/codex",
        default_version="0.171.0",
        depends_on="base",
    ),
    ImageRecipe(
        "gemini",
        "Dockerfile.gemini",
        "gemini",
        package="@google/gemini-cli",
        default_version="0.61.0",
        depends_on="base",
    ),
    ImageRecipe(
        "aider",
        "Dockerfile.aider",
        "aider",
        package="aider-chat",
        default_version="0.86.2",
        depends_on="base",
    ),
    ImageRecipe("echo", "Dockerfile.echo", "echo", depends_on="base"),
)
TYPES: tuple[str, ...] = tuple(recipe.type for recipe in RECIPES)
_BY_TYPE: dict[str, ImageRecipe] = {recipe.type: recipe for recipe in RECIPES}


def recipe_for(image_type: str) -> ImageRecipe:
    try:
        return _BY_TYPE[image_type]
    except KeyError:
        raise ValidationError(
            f"unknown image type {image_type!r}",
            resolution=f"Choose from: {', '.join((*TYPES, ALL))}.",
        ) from None


def resolve_types(requested: Iterable[str]) -> list[str]:
    """The requested types plus what they are built FROM, in build order.

    Nothing requested (or ``all``) means every image.
    """
    wanted: set[str] = set()
    for name in requested:
        if name == ALL:
            wanted.update(TYPES)
            continue
        wanted.add(recipe_for(name).type)
    if not wanted:
        wanted.update(TYPES)
    for name in list(wanted):
        dependency = _BY_TYPE[name].depends_on
        while dependency is not None:
            wanted.add(dependency)
            dependency = _BY_TYPE[dependency].depends_on
    return [name for name in TYPES if name in wanted]


def image_name(settings: Settings, image_type: str) -> str:
    return settings.image_for(image_type)


def parse_version_overrides(values: Sequence[str]) -> dict[str, str]:
    """Parse ``TYPE=VERSION`` pairs (``claude=2.1.300``) for the CLI images."""
    overrides: dict[str, str] = {}
    for value in values:
        image_type, sep, version = value.partition("=")
        image_type, version = image_type.strip(), version.strip()
        if not sep or not image_type or not version:
            raise ValidationError(
                f"--cli-version expects TYPE=VERSION, got {value!r}",
                resolution="For example: --cli-version claude=2.1.332",
            )
        recipe = recipe_for(image_type)
        if not recipe.has_cli_version:
            raise ValidationError(
                f"the {image_type} image has no CLI version to choose",
                resolution="Versions apply to: "
                + ", ".join(r.type for r in RECIPES if r.has_cli_version)
                + ".",
            )
        check_exact_version(version)
        overrides[image_type] = version
    return overrides


def check_exact_version(version: str) -> str:
    if not _EXACT_VERSION.fullmatch(version):
        raise ValidationError(
            f"{version!r} is not an exact version",
            resolution="Give a full version such as 1.2.3; it is recorded as the image's label.",
        )
    return version


def build_args(
    recipe: ImageRecipe,
    *,
    base_image: str,
    cli_versions: Mapping[str, str],
    keep_ca: bool,
) -> dict[str, str]:
    """The Dockerfile ARGs for one image.

    ``base_image`` is what the Dockerfile builds FROM: the Debian image for ``base``, the
    project's base image for the others.
    """
    args = {"BASE_IMAGE": base_image}
    if recipe.type == "base":
        args["KEEP_CA"] = "1" if keep_ca else "0"
    if recipe.default_version is not None:
        args["CLI_VERSION"] = cli_versions.get(recipe.type, recipe.default_version)
    return args
