"""``parallax-docker spawn``: every field of a spawn request as a command-line option."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parallax_docker.cli import output
from parallax_docker.cli.connection import JsonOpt, connection_of, reporting
from parallax_docker.cli.spawn_options import (
    parse_credentials,
    parse_env,
    parse_labels,
    read_env_file,
    spawn_fields,
)
from parallax_docker.errors import ValidationError
from parallax_docker.models import AgentType


def spawn(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="Agent name (unique).")],
    agent_type: Annotated[
        AgentType,
        typer.Option("--type", "-t", help="Agent CLI; selects the image parallax/agent-<type>."),
    ],
    command_args: Annotated[
        list[str] | None,
        typer.Argument(
            help="Command and arguments to run instead of the image's (after --).",
            show_default=False,
        ),
    ] = None,
    agent_id: Annotated[
        str | None, typer.Option("--id", help="Agent id (default: agent-<random>).")
    ] = None,
    role: Annotated[str | None, typer.Option("--role", help="Role in the team.")] = None,
    reports_to: Annotated[
        str | None, typer.Option("--reports-to", help="Id of the agent this one reports to.")
    ] = None,
    capability: Annotated[
        list[str] | None,
        typer.Option("--capability", help="A capability (repeat for several)."),
    ] = None,
    workdir: Annotated[
        str | None, typer.Option("--workdir", "-w", help="Working directory in the agent.")
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            "-e",
            help="KEY=VALUE for the agent, or KEY to pass this shell's value (repeat). "
            "Values are secret: never shown.",
        ),
    ] = None,
    env_file: Annotated[
        list[Path] | None,
        typer.Option("--env-file", help="File of KEY=VALUE lines (repeat); --env wins."),
    ] = None,
    credential: Annotated[
        list[str] | None,
        typer.Option(
            "--credential",
            help="NAME=VALUE credential (anthropicKey, openaiKey, googleKey, githubToken, or any "
            "variable name); VALUE may be env:VAR, file:PATH or - (stdin). Repeat.",
        ),
    ] = None,
    anthropic_key: Annotated[
        str | None,
        typer.Option(
            "--anthropic-key",
            help="ANTHROPIC_API_KEY for the agent: VALUE, env:VAR, file:PATH or -.",
            show_default=False,
        ),
    ] = None,
    openai_key: Annotated[
        str | None,
        typer.Option(
            "--openai-key",
            help="OPENAI_API_KEY for the agent: VALUE, env:VAR, file:PATH or -.",
            show_default=False,
        ),
    ] = None,
    google_key: Annotated[
        str | None,
        typer.Option(
            "--google-key",
            help="GOOGLE_API_KEY for the agent: VALUE, env:VAR, file:PATH or -.",
            show_default=False,
        ),
    ] = None,
    github_token: Annotated[
        str | None,
        typer.Option(
            "--github-token",
            help="GITHUB_TOKEN for the agent: VALUE, env:VAR, file:PATH or -.",
            show_default=False,
        ),
    ] = None,
    memory: Annotated[
        str | None, typer.Option("--memory", "-m", help="Memory limit: 512m, 1.5g, 256Mi, 1Gi.")
    ] = None,
    cpu: Annotated[
        str | None, typer.Option("--cpu", help="CPU limit in cores: 0.5, 2, 500m.")
    ] = None,
    timeout: Annotated[
        int | None, typer.Option("--timeout", help="Maximum lifetime in seconds.", min=1)
    ] = None,
    auto_restart: Annotated[
        bool, typer.Option("--auto-restart", help="Restart the agent when it crashes.")
    ] = False,
    idle_timeout: Annotated[
        int | None,
        typer.Option("--idle-timeout", help="Stop the agent after this many idle seconds.", min=1),
    ] = None,
    execution_id: Annotated[
        str | None,
        typer.Option("--execution-id", help="Execution the agent belongs to (shared login state)."),
    ] = None,
    volume: Annotated[
        list[str] | None,
        typer.Option(
            "--volume", "-v", help="/host/path:/path[:ro|rw] or volume:/path[:ro|rw] (repeat)."
        ),
    ] = None,
    network: Annotated[
        str | None, typer.Option("--network", help="Network: a name, 'internal' or 'none'.")
    ] = None,
    command: Annotated[
        str | None,
        typer.Option("--command", help="Command string to run instead of the image's."),
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="Image to run (custom agents).")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="KEY=VALUE label (repeat).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the agent id.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Spawn an agent and wait until it is ready.

    Example: parallax-docker spawn -n helper -t claude --anthropic-key env:ANTHROPIC_API_KEY
    """
    with reporting():
        if command is not None and command_args:
            raise ValidationError("give --command or a command after --, not both")
        merged_env: dict[str, str] = {}
        for path in env_file or ():
            merged_env.update(read_env_file(path))
        merged_env.update(parse_env(env or ()))
        credentials = parse_credentials(
            credential or (),
            {
                "anthropicKey": anthropic_key,
                "openaiKey": openai_key,
                "googleKey": google_key,
                "githubToken": github_token,
            },
        )
        fields = spawn_fields(
            name=name,
            agent_type=agent_type.value,
            agent_id=agent_id,
            role=role,
            reports_to=reports_to,
            capabilities=capability or (),
            workdir=workdir,
            env=merged_env,
            credentials=credentials,
            memory=memory,
            cpu=cpu,
            timeout_s=timeout,
            auto_restart=auto_restart,
            idle_timeout_s=idle_timeout,
            execution_id=execution_id,
            volumes=volume or (),
            network=network,
            command=command if command is not None else command_args,
            image=image,
            labels=parse_labels(label or ()),
        )
        with connection_of(ctx).client() as client:
            agent = client.spawn(**fields)
        if as_json:
            typer.echo(output.to_json(agent))
        elif quiet:
            typer.echo(agent.id)
        else:
            output.console().print(output.agent_detail(agent))
