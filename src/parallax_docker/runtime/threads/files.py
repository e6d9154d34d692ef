"""Writing a thread's context files into its workspace, from inside the agent.

Each file is written by an exec in the agent's container, as the agent's own user, with the
workspace as its working directory: the path (already checked to be relative and free of
``.``/``..``) is resolved in the container, where the only host folder is the workspace itself.
Whatever a symlink in the workspace points at, the write reaches nothing the agent could not
write on its own. The content travels on stdin, never through a shell's parsing.
"""

from __future__ import annotations

from collections.abc import Iterable

from parallax_docker.backends.base import Backend, ExecSpec
from parallax_docker.errors import ContextFilesError
from parallax_docker.security import AGENT_WORKSPACE

# $1: the file's path relative to the workspace; the content is stdin.
WRITE_SCRIPT = """set -e
umask 022
case $1 in */*) mkdir -p -- "${1%/*}" ;; esac
cat >"$1"
"""
WRITE_TIMEOUT_S = 30.0


def write_argv(path: str) -> tuple[str, ...]:
    return ("/bin/sh", "-c", WRITE_SCRIPT, "parallax-context-file", path)


async def write_context_files(
    backend: Backend, container_id: str, files: Iterable[dict[str, str]]
) -> None:
    for item in files:
        spec = ExecSpec(
            argv=write_argv(item["path"]),
            stdin=item["content"].encode(),
            workdir=AGENT_WORKSPACE,
        )
        result = await backend.exec(container_id, spec, timeout_s=WRITE_TIMEOUT_S)
        if result.exit_code != 0:
            said = result.output.decode("utf-8", "replace").strip()[-300:]
            raise ContextFilesError(
                f"could not write context file {item['path'][:200]!r} into the workspace "
                f"(exit {result.exit_code}: {said})"
            )
