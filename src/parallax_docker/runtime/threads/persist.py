"""A thread's record as the JSON the store keeps, and back (after a restart of the service).

Everything of the record is kept, so that a thread comes back as it was: its spec, status,
flags, the inputs waiting for a turn and the context files not yet written. Nothing secret is
in it (a thread's env goes to its agent, never to the record).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, fields
from typing import Any

from parallax_docker.runtime.threads.record import ThreadRecord
from parallax_docker.runtime.threads.spec import QueuedInput, ThreadSpec
from parallax_docker.thread_models import ApprovalPreset, ThreadStatus

log = logging.getLogger(__name__)

SCHEMA = 1
_SPEC_FIELDS = {f.name for f in fields(ThreadSpec)}
_RECORD_FIELDS = {f.name for f in fields(ThreadRecord)} - {
    "spec",
    "inputs",
    "files",
    "status",
    "current",
}


def to_json(thread: ThreadRecord) -> dict[str, Any]:
    body = asdict(thread)
    body["schema"] = SCHEMA
    body["status"] = thread.status.value
    body["spec"]["approval_preset"] = thread.spec.approval_preset.value
    return body


def from_json(body: dict[str, Any]) -> ThreadRecord | None:
    """None for a row this version cannot read (it is logged and left alone)."""
    try:
        if body.get("schema") != SCHEMA:
            raise ValueError(f"schema {body.get('schema')!r}")
        spec_body = {k: v for k, v in dict(body["spec"]).items() if k in _SPEC_FIELDS}
        spec_body["approval_preset"] = ApprovalPreset(spec_body["approval_preset"])
        spec = ThreadSpec(**spec_body)
        rest = {k: v for k, v in body.items() if k in _RECORD_FIELDS}
        current = body.get("current")
        return ThreadRecord(
            spec=spec,
            status=ThreadStatus(body["status"]),
            current=QueuedInput(**current) if current else None,
            inputs=[QueuedInput(**item) for item in body.get("inputs") or ()],
            files=tuple(dict(item) for item in body.get("files") or ()),
            **rest,
        )
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("cannot read a kept thread (%s); it is left alone", type(exc).__name__)
        return None
