"""``parallax-docker images``: build the agent images and list what is built.

Mounted by the main app as ``app.add_typer(images_app, name="images")``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from parallax_docker.config import Settings, load_settings
from parallax_docker.errors import ParallaxError
from parallax_docker.images import catalog
from parallax_docker.images.builder import BuildRequest, BuildResult, human_size
from parallax_docker.images.ca import choose_ca
from parallax_docker.images.context import find_images_dir
from parallax_docker.images.operations import build_images, human_age, list_images
from parallax_docker.images.progress import PlainReporter, RichReporter

images_app = typer.Typer(help="Build and list the agent images.", no_args_is_help=True)


class Target(StrEnum):
    """What ``images build`` accepts; a unit test keeps it equal to the catalog."""

    base = "base"
    claude = "claude"
    codex = "codex"
    gemini = "gemini"
    aider = "aider"
    echo = "echo"
    all = "all"


class BuildNetwork(StrEnum):
    default = "default"
    host = "host"


def _fail(exc: ParallaxError) -> NoReturn:
    typer.echo(f"error [{exc.code}]: {exc.message}\nhint: {exc.resolution}", err=True)
    raise typer.Exit(2 if exc.http_status < 500 else 1)


def _settings() -> Settings:
    try:
        return load_settings()
    except ParallaxError as exc:
        _fail(exc)


@images_app.command("build")
def build(
    targets: Annotated[
        list[Target] | None,
        typer.Argument(help="Images to build (default: all). The base is added when needed."),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Ignore the layer cache: rebuild every step.")
    ] = False,
    missing: Annotated[
        bool, typer.Option("--missing", help="Build only the images that are not present.")
    ] = False,
    plain: Annotated[
        bool | None,
        typer.Option(
            "--plain/--no-plain",
            help="One log line per step (for CI). Default: plain when stdout is not a terminal.",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Plain mode: also print every output line.")
    ] = False,
    ca_cert: Annotated[
        Path | None,
        typer.Option(
            "--ca-cert",
            help="Extra CA certificate(s) (PEM) for apt, npm and pip during the build.",
            dir_okay=False,
        ),
    ] = None,
    host_ca: Annotated[
        bool | None,
        typer.Option(
            "--host-ca/--no-host-ca",
            help="Use the host bundle (/etc/ssl/certs/ca-certificates.crt) as the extra CA. "
            "Default: yes when it exists and --ca-cert is not given.",
        ),
    ] = None,
    keep_ca: Annotated[
        bool,
        typer.Option("--keep-ca", help="Leave the extra CA in the images' trust store."),
    ] = False,
    cli_version: Annotated[
        list[str] | None,
        typer.Option(
            "--cli-version",
            help="Pin a CLI version: TYPE=VERSION (e.g. claude=2.1.332). Repeatable.",
        ),
    ] = None,
    base_image: Annotated[
        str | None,
        typer.Option(
            "--base-image",
            help="Debian 12 image to build the base FROM (pulled if missing). Default: "
            f"{catalog.DEBIAN_IMAGE}, else a debootstrapped {catalog.ROOTFS_IMAGE}.",
        ),
    ] = None,
    fresh_base: Annotated[
        bool,
        typer.Option(
            "--fresh-base",
            help=f"Bootstrap Debian anew into {catalog.ROOTFS_IMAGE} even if a base is present "
            "(with --no-cache: a build from nothing).",
        ),
    ] = False,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, max=8, help="Images built at the same time.")
    ] = 2,
    network: Annotated[
        BuildNetwork,
        typer.Option(
            "--network",
            help="Network of the build steps: the engine's default bridge, or the host's "
            "(for engines without a working default bridge).",
        ),
    ] = BuildNetwork.default,
    images_dir: Annotated[
        Path | None,
        typer.Option("--images-dir", help="Directory with the Dockerfiles (default: checkout)."),
    ] = None,
) -> None:
    """Build agent images (base, claude, codex, gemini, aider, echo, or all)."""
    settings = _settings()
    try:
        ca = choose_ca(ca_cert, host_ca)
        request = BuildRequest(
            types=tuple(t.value for t in targets or ()),
            no_cache=no_cache,
            missing_only=missing,
            keep_ca=keep_ca,
            extra_ca=ca.data,
            cli_versions=catalog.parse_version_overrides(cli_version or []),
            base_image=base_image,
            fresh_base=fresh_base,
            jobs=jobs,
            network=None if network is BuildNetwork.default else network.value,
        )
        directory = find_images_dir(images_dir)
    except ParallaxError as exc:
        _fail(exc)

    plain_mode = plain if plain is not None else not sys.stdout.isatty()
    console = Console(highlight=False)
    if plain_mode:
        print(f"building with {ca.describe()}{' (kept in the images)' if keep_ca else ''}")
        results = _run(settings, request, directory, PlainReporter(sys.stdout, verbose=verbose))
    else:
        console.print(f"[dim]building with {ca.describe()}[/]")
        reporter = RichReporter(console)
        with reporter.live():
            results = _run(settings, request, directory, reporter)
    _summary(results, plain_mode, console)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _run(
    settings: Settings,
    request: BuildRequest,
    directory: Path,
    reporter: PlainReporter | RichReporter,
) -> list[BuildResult]:
    try:
        return asyncio.run(build_images(settings, request, reporter, directory))
    except ParallaxError as exc:
        _fail(exc)


def _summary(results: list[BuildResult], plain: bool, console: Console) -> None:
    if plain:
        for r in results:
            detail = r.error or human_size(r.size)
            print(f"summary: {r.image} {r.outcome} {r.seconds:.0f}s {detail}")
        return
    table = Table(title="images", title_justify="left")
    table.add_column("image", no_wrap=True)
    for column in ("result", "time", "size"):
        table.add_column(column)
    for r in results:
        style = "green" if r.ok else "red"
        table.add_row(
            r.image,
            f"[{style}]{r.outcome}[/]",
            f"{r.seconds:.0f}s" if r.outcome == "built" else "-",
            human_size(r.size) if r.size is not None else (r.error or "-"),
        )
    console.print(table)


@images_app.command("ls")
def ls(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show each agent image: built or missing, size, CLI version and age."""
    settings = _settings()
    try:
        rows = asyncio.run(list_images(settings))
    except ParallaxError as exc:
        _fail(exc)
    now = datetime.now(UTC)
    if as_json:
        typer.echo(json.dumps({"images": [row.to_json(now) for row in rows]}, indent=2))
        return
    table = Table()
    table.add_column("image", no_wrap=True)
    for column in ("type", "status", "size", "cli version", "age"):
        table.add_column(column)
    for row in rows:
        status = "[green]built[/]" if row.status == "built" else "[yellow]missing[/]"
        version = f"{row.cli_name} {row.cli_version}" if row.cli_version else "-"
        size = human_size(row.size) if row.size is not None else "-"
        table.add_row(row.image, row.type, status, size, version, human_age(row.age_s(now)))
    Console().print(table)
