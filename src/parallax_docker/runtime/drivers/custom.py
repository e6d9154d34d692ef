"""Custom agents: the image's own turn command, the message on stdin, the answer is stdout.

The command is the image's ``PARALLAX_CLI_BIN`` (the echo image's is ``parallax-echo``, which
copies stdin to stdout). Whatever it prints on stdout is the answer, exactly; a non-zero exit
makes the answer an error carrying the end of stderr.
"""

from __future__ import annotations

from parallax_docker.runtime.drivers.base import (
    TurnOutput,
    TurnPlan,
    TurnResult,
    base_metadata,
    error_text,
    find_login_url,
    marker_login,
)
from parallax_docker.thread_models import ApprovalPreset


class CustomDriver:
    name = "custom"

    def plan(
        self,
        message: str,
        session_id: str | None,
        preset: ApprovalPreset = ApprovalPreset.AUTONOMOUS,
    ) -> TurnPlan:
        # The preset reaches the image's command in PARALLAX_APPROVAL_PRESET (a thread's env).
        return TurnPlan(argv=(), stdin=message.encode())

    def parse(self, output: TurnOutput) -> TurnResult:
        metadata = base_metadata(output)
        marker = marker_login(output)
        if marker is not None:
            return TurnResult(
                content=marker,
                ok=False,
                login_required=True,
                login_url=find_login_url(output.stderr_text),
                metadata=metadata,
            )
        if output.exit_code != 0:
            return TurnResult(
                content=error_text(output, f"the command exited with code {output.exit_code}"),
                ok=False,
                metadata=metadata,
            )
        return TurnResult(content=output.stdout_text, metadata=metadata)
