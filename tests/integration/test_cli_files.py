"""``parallax-docker cp``, ``diff`` and ``open`` as real processes against the real service."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.engine import Engine
from tests.support.polling import poll
from tests.support.server import ServiceProcess


@pytest.fixture
def run(
    service: ServiceProcess, tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    def invoke(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        env = {k: v for k, v in os.environ.items() if k != "PARALLAX_API_TOKEN"}
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        return subprocess.run(
            [sys.executable, "-m", "parallax_docker.cli.main", "--url", service.url, *args],
            input=stdin,
            capture_output=True,
            cwd=tmp_path,
            env=env,
            timeout=300,
            check=False,
        )

    return invoke


@pytest.fixture
def echo(spawn: Callable[..., dict[str, Any]], agent_image: Callable[[str], str]) -> dict[str, Any]:
    return spawn(
        image=agent_image("echo"),
        env={"PARALLAX_CLI_BIN": "sh"},
        resources={"memory": "256m", "cpu": 0.5},
    )


def make_tree(root: Path) -> None:
    (root / "src" / "deep").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('hi')\n")
    (root / "src" / "deep" / "blob.bin").write_bytes(os.urandom(300_000))
    (root / "empty").mkdir()
    (root / "README.md").write_text("# tree\n")
    (root / "src" / "link").symlink_to("app.py")


def same_tree(left: Path, right: Path) -> bool:
    compared = filecmp.dircmp(left, right)
    if compared.left_only or compared.right_only or compared.diff_files or compared.funny_files:
        return False
    return all(same_tree(left / sub, right / sub) for sub in compared.common_dirs)


def test_cp_copies_a_folder_in_and_out_as_a_whole(
    run: Callable[..., subprocess.CompletedProcess[bytes]], echo: dict[str, Any], tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    up = run("cp", str(tree), f"{echo['id']}:proj")
    assert up.returncode == 0, up.stderr
    assert b"/workspace/proj" in up.stderr
    down = run("cp", f"{echo['id']}:/workspace/proj", str(tmp_path / "back"))
    assert down.returncode == 0, down.stderr
    assert same_tree(tree, tmp_path / "back")
    assert os.readlink(tmp_path / "back" / "src" / "link") == "app.py"


def test_cp_copies_single_files_and_pipes(
    run: Callable[..., subprocess.CompletedProcess[bytes]], echo: dict[str, Any], tmp_path: Path
) -> None:
    data = os.urandom(1_000_000)
    (tmp_path / "one.bin").write_bytes(data)
    assert run("cp", "one.bin", f"{echo['id']}:/workspace/files/").returncode == 0
    assert run("cp", f"{echo['id']}:files/one.bin", "copy.bin").returncode == 0
    assert (tmp_path / "copy.bin").read_bytes() == data
    (tmp_path / "into").mkdir()
    assert run("cp", f"{echo['id']}:files/one.bin", "into").returncode == 0
    assert (tmp_path / "into" / "one.bin").read_bytes() == data
    assert run("cp", "-", f"{echo['id']}:~/piped.txt", stdin=b"through a pipe\n").returncode == 0
    piped = run("cp", f"{echo['id']}:~/piped.txt", "-")
    assert piped.returncode == 0 and piped.stdout == b"through a pipe\n"


def test_cp_refusals_have_codes_and_exit_codes(
    run: Callable[..., subprocess.CompletedProcess[bytes]], echo: dict[str, Any], tmp_path: Path
) -> None:
    outside = run("cp", f"{echo['id']}:/etc/passwd", "passwd")
    assert outside.returncode == 8
    assert b"error [PATH_FORBIDDEN]" in outside.stderr
    assert not (tmp_path / "passwd").exists()
    missing = run("cp", f"{echo['id']}:nothing-here", "x")
    assert missing.returncode == 3 and b"FILE_NOT_FOUND" in missing.stderr
    both_local = run("cp", "a", "b")
    assert both_local.returncode == 2 and b"AGENT:PATH" in both_local.stderr


def test_diff_shows_what_a_turn_changed(
    run: Callable[..., subprocess.CompletedProcess[bytes]],
    echo: dict[str, Any],
    api: httpx.Client,
) -> None:
    answer = api.post(
        f"/agents/{echo['id']}/send",
        json={
            "message": "mkdir -p out && echo result > out/r.txt && echo ok",
            "expectResponse": True,
        },
    )
    assert answer.status_code == 200, answer.text
    names = run("diff", echo["id"], "--name-only")
    assert names.returncode == 0, names.stderr
    assert names.stdout.decode().splitlines() == ["A\tout/r.txt"]
    as_json = run("diff", echo["id"], "--json")
    assert b'"mode": "files"' in as_json.stdout


def test_open_prints_a_link_that_serves_the_agents_app(
    run: Callable[..., subprocess.CompletedProcess[bytes]],
    echo: dict[str, Any],
    engine: Engine,
    service: ServiceProcess,
) -> None:
    server = "require('http').createServer((q, s) => s.end('app says hi')).listen(8080, '0.0.0.0')"
    code, output = engine.exec(
        echo["containerName"],
        "sh",
        "-c",
        f'nohup node -e "{server}" >/dev/null 2>&1 &',
        user="agent",
    )
    assert code == 0, output
    opened = run("open", echo["id"], "8080", "--no-browser")
    assert opened.returncode == 0, opened.stderr
    url = opened.stdout.decode().strip()
    assert url.startswith(service.url + "/previews/")
    page = poll(lambda: httpx.get(url), lambda r: r.status_code == 200, 30, 0.2)
    assert page.text == "app says hi"
