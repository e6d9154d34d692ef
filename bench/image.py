"""The benchmark's agent image: the test suite's busybox image with a readiness check and a
process that stops at once on SIGTERM, so that stop timings measure the runtime, not a sleep.

``parallax-bench/agent`` runs ``touch /tmp/ready; exec sleep`` under the engine's init; its
HEALTHCHECK (``test -f /tmp/ready``, every 30 s like the test image) is what readiness probes.
Nothing is pulled: the base is built locally from Debian's busybox-static.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

from tests.support.images import BUSYBOX_IMAGE, DOCKER, ensure_test_images

BENCH_IMAGE = "parallax-bench/agent:latest"

_DOCKERFILE = """\
FROM {base}
LABEL parallax.bench={definition}
HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD ["/bin/test", "-f", "/tmp/ready"]
CMD ["/bin/sh", "-c", "touch /tmp/ready; exec sleep 2147483647"]
"""
_DEFINITION = hashlib.sha256(_DOCKERFILE.encode()).hexdigest()[:12]


def _current() -> bool:
    result = subprocess.run(
        [
            DOCKER,
            "image",
            "inspect",
            "--format",
            '{{index .Config.Labels "parallax.bench"}}',
            BENCH_IMAGE,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0 and result.stdout.strip() == _DEFINITION


def ensure_bench_image() -> str:
    ensure_test_images()
    if not _current():
        with tempfile.TemporaryDirectory() as context:
            (Path(context) / "Dockerfile").write_text(
                _DOCKERFILE.format(base=BUSYBOX_IMAGE, definition=_DEFINITION)
            )
            subprocess.run(
                [DOCKER, "build", "-q", "-t", BENCH_IMAGE, context],
                check=True,
                capture_output=True,
            )
    return BENCH_IMAGE
