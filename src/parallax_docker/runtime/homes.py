"""Where a CLI agent's home lives: a volume of its own, so its sessions survive a restart.

The CLIs keep their conversations (and logins) in the home directory: ``~/.claude``,
``~/.codex``, ``~/.gemini``, aider's history files. A tmpfs there is wiped by every restart of the
container, so an agent of a CLI type gets an anonymous volume at its home instead:

- it is the container's own: created with the container, kept across restarts of the
  container and of the service, and removed with the container (the runtime always removes
  containers with their anonymous volumes);
- it has no name a request could know, and its ``parallax.volume.kind=agent-home`` label makes
  with the runtime's owner label (volume_owner.py) make the runtime refuse it in a request's
  ``volumes`` (runtime/volumes.py) even when its generated name is known;
- the engine fills it from the image's home directory (owned by the agent user, mode 0700).

Agents of an ``executionId`` keep the execution's shared home volume instead, and a request
that mounts its own volume at the home directory keeps that. Only project images get the
volume (label ``parallax.image.user=agent``: their home directory exists with the right owner);
other images keep the home tmpfs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from parallax_docker.backends.base import ImageInfo, MountSpec
from parallax_docker.security import AGENT_HOME
from parallax_docker.volume_owner import runtime_volume_labels

VOLUME_KIND = "parallax.volume.kind"
AGENT_HOME_KIND = "agent-home"
# The agent types whose CLIs keep sessions in the home directory.
SESSION_TYPES = frozenset({"claude", "codex", "gemini", "aider"})
_PROJECT_IMAGE_USER = ("parallax.image.user", "agent")


def keeps_home(agent_type: str, image: ImageInfo, mounts: Iterable[MountSpec]) -> bool:
    """Whether an agent of ``agent_type`` on ``image`` gets a home volume of its own."""
    key, value = _PROJECT_IMAGE_USER
    return (
        agent_type in SESSION_TYPES
        and image.labels.get(key) == value
        and all(mount.target != AGENT_HOME for mount in mounts)
    )


def home_mount(selector: Mapping[str, str]) -> MountSpec:
    """The anonymous home volume (no source: the engine names it and removes it with -v)."""
    labels = {**selector, VOLUME_KIND: AGENT_HOME_KIND, **runtime_volume_labels()}
    return MountSpec("volume", AGENT_HOME, "", volume_labels=labels)
