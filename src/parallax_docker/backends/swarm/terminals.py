"""Interactive terminals (the Terminals capability) in an agent on any node: a TTY exec on the
node's own engine, over mutual TLS."""

from __future__ import annotations

from parallax_docker.backends.base import ExecSpec, TerminalSession
from parallax_docker.backends.docker.terminals import DockerTerminals
from parallax_docker.backends.swarm.nodes import on_node
from parallax_docker.backends.swarm.readings import Readings


class SwarmTerminals:
    def __init__(self, readings: Readings) -> None:
        self._readings = readings

    async def open_terminal(
        self, container_id: str, spec: ExecSpec, cols: int, rows: int
    ) -> TerminalSession:
        node, engine, placed = await self._readings.placed(container_id)
        async with on_node(node):
            return await DockerTerminals(engine).open_terminal(placed, spec, cols, rows)
