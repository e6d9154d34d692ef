"""Request and response models of files, workspace diffs and previews (pydantic, no I/O).

Kept beside models.py (the agents' own models) so that the client, the CLI, the MCP tools and
the API share one shape; docs/files.md describes each.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FileKind = Literal["file", "dir", "symlink", "other"]
Change = Literal["added", "modified", "deleted", "renamed"]


class _Camel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class FileEntryModel(_Camel):
    name: str
    path: str = Field(description="The entry's path in the agent")
    type: FileKind
    size: int
    mode: str = Field(description="Permission bits, octal (e.g. 644)")
    mtime: float = Field(description="Last modification, Unix seconds")
    target: str | None = Field(None, description="Where a symbolic link points, as written")


class FileListResponse(_Camel):
    path: str = Field(description="The folder's real path in the agent (links resolved)")
    entries: list[FileEntryModel]
    count: int
    truncated: bool = Field(description="True when the folder has more entries than listed")


class FileWriteResponse(_Camel):
    path: str
    bytes: int = Field(description="Bytes received (the file, or the whole archive)")
    archive: bool


class ChangedFile(_Camel):
    path: str = Field(description="Relative to the workspace root")
    change: Change
    size: int | None = None
    old_path: str | None = Field(None, alias="oldPath", description="A renamed file's old path")


class Commit(_Camel):
    sha: str
    author: str
    date: str
    subject: str


class Baseline(_Camel):
    taken_at: float = Field(alias="takenAt", description="Unix seconds")
    head: str | None = Field(None, description="The git HEAD then (null: not a repository)")


class DiffResponse(_Camel):
    """What changed in the agent's workspace since ``since`` (its spawn)."""

    mode: Literal["git", "files"]
    root: str = Field(description="The workspace folder compared")
    since: Baseline | None = Field(
        None, description="The snapshot compared against; null when none was taken at spawn"
    )
    files: list[ChangedFile]
    commits: list[Commit] = Field(default_factory=list, description="git: commits since then")
    head: str | None = Field(None, description="git: HEAD now")
    diff: str | None = Field(None, description="git: unified diff of the work tree since then")
    truncated: bool = False


class PreviewRequest(_Camel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    port: int = Field(ge=1, le=65535)


class PreviewResponse(_Camel):
    port: int
    path: str = Field(description="Open this path on the service (it carries the link's ticket)")
    expires_at: float = Field(alias="expiresAt", description="Unix seconds")
