"""Turning the classic builder's JSON chunks into build events."""

from __future__ import annotations

import pytest

from parallax_docker.backends.capabilities import BuildDone, BuildEvent, BuildOutput, BuildStep
from parallax_docker.backends.docker.build import BuildStreamParser
from parallax_docker.errors import EngineError


def run(*chunks: dict[str, object]) -> list[BuildEvent]:
    parser = BuildStreamParser()
    events: list[BuildEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.finish())
    return events


def test_step_lines_become_steps_and_the_image_id_ends_the_build() -> None:
    events = run(
        {"stream": "Step 1/3 : FROM parallax/agent-base:latest\n"},
        {"stream": " ---> 6d676f6adaa7\n"},
        {"stream": "Step 2/3 : RUN npm install\n"},
        {"aux": {"ID": "sha256:abc"}},
        {"stream": "Successfully built abc\n"},
    )
    assert events[0] == BuildStep(1, 3, "FROM parallax/agent-base:latest")
    assert events[2] == BuildStep(2, 3, "RUN npm install")
    assert events[-1] == BuildDone("sha256:abc")


def test_a_line_split_across_chunks_is_one_line() -> None:
    events = run(
        {"stream": "Step 1/1 : RUN ec"},
        {"stream": "ho hi\nadded 2 pack"},
        {"stream": "ages\r\n"},
        {"aux": {"ID": "sha256:abc"}},
    )
    assert events[:2] == [BuildStep(1, 1, "RUN echo hi"), BuildOutput("added 2 packages")]


def test_blank_lines_are_dropped() -> None:
    events = run({"stream": "\n\n  \nhello\n"}, {"aux": {"ID": "sha256:abc"}})
    assert events == [BuildOutput("hello"), BuildDone("sha256:abc")]


def test_a_trailing_line_without_newline_is_kept() -> None:
    events = run({"aux": {"ID": "sha256:abc"}}, {"stream": "last words"})
    assert BuildOutput("last words") in events


def test_successfully_built_gives_the_id_when_no_aux_came() -> None:
    assert run({"stream": "Successfully built 08c1974090a4\n"})[-1] == BuildDone("08c1974090a4")


def test_status_chunks_are_output() -> None:
    events = run({"status": "Pulling fs layer"}, {"aux": {"ID": "sha256:abc"}})
    assert events[0] == BuildOutput("Pulling fs layer")


def test_a_build_that_ends_without_an_image_is_an_error() -> None:
    with pytest.raises(EngineError, match="without reporting an image"):
        run({"stream": "Step 1/2 : FROM x\n"})
