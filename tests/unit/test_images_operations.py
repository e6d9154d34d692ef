"""Listing images and the times the engine reports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from parallax_docker.backends.base import ImageInfo
from parallax_docker.config import load_settings
from parallax_docker.images.operations import human_age, list_images, parse_created


class Engine:
    def __init__(self, images: dict[str, ImageInfo]) -> None:
        self.images = images

    async def get_image(self, ref: str) -> ImageInfo | None:
        return self.images.get(ref)

    async def close(self) -> None:
        raise AssertionError("a borrowed engine is not closed")


def test_parse_created_takes_nanoseconds_and_z() -> None:
    parsed = parse_created("2026-11-26T17:38:12.668000493Z")
    assert parsed == datetime(2026, 11, 26, 17, 38, 12, 668000, tzinfo=UTC)


@pytest.mark.parametrize("value", [None, "", "yesterday"])
def test_parse_created_gives_none_for_what_it_cannot_read(value: str | None) -> None:
    assert parse_created(value) is None


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "-"), (5, "5s ago"), (125, "2m ago"), (7300, "2h ago")]
)
def test_human_age(seconds: float | None, text: str) -> None:
    assert human_age(seconds) == text


async def test_list_shows_built_and_missing_images_with_their_cli_version() -> None:
    settings = load_settings({})
    claude = ImageInfo(
        "sha256:c",
        ("parallax/agent-claude:latest",),
        "1000:1000",
        None,
        {"parallax.cli.name": "claude", "parallax.cli.version": "2.1.332"},
        712_000_000,
        "2026-11-26T17:00:00Z",
    )
    rows = await list_images(settings, engine=Engine({"parallax/agent-claude:latest": claude}))  # type: ignore[arg-type]
    by_type = {row.type: row for row in rows}
    assert list(by_type) == ["base", "claude", "codex", "gemini", "aider", "echo"]
    assert (by_type["claude"].status, by_type["claude"].cli_version) == ("built", "2.1.332")
    assert by_type["codex"].status == "missing" and by_type["codex"].size is None
    now = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)
    assert by_type["claude"].to_json(now)["age_s"] == 3600.0
