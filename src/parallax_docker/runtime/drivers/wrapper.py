"""The argument vectors that run a turn, stop it, and open a terminal inside an agent.

A turn runs ``/bin/sh -c TURN_SCRIPT parallax-turn <turn id> <check> <file flag> <argv...>``:
the script is a constant; the message never appears in it (it is the CLI's stdin) and the CLI's
arguments are passed as positional parameters, so no shell ever parses them. The script

- records its pid in ``/run/parallax/parallax-turn-<id>.pid`` (the exec'd process leads its own
  process group, so that pid also names the group of everything the CLI starts);
- lists /workspace, so that the files the turn changes can be told afterwards
  (runtime/workspace_changes.py);
- with a file flag, writes stdin to a private file and appends ``<flag> <file>`` to the argv;
- in the project images, loads the agent's secret env (images/entrypoint/lib.sh) and, when asked,
  refuses with the ``parallax: login required:`` marker if the type's credential is missing;
  elsewhere it sources ``/run/parallax/env.sh`` when the service wrote one;
- runs the CLI with ``exec`` (empty argv: the image's ``$PARALLAX_CLI_BIN``).

``KILL_SCRIPT`` interrupts a turn from a second exec: SIGTERM to the group, SIGKILL after a
short grace. Terminals record their pid the same way, so that closing the WebSocket hangs up
the shell (a TTY exec outlives its connection otherwise).
"""

from __future__ import annotations

import re

from parallax_docker.runtime.workspace_changes import SNAPSHOT

RUN_DIR = "/run/parallax"
LIB = "/usr/local/lib/parallax/lib.sh"
EXEC_HELPER = "/usr/local/bin/parallax-exec"
TURN_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
# Exit status of a turn refused for a missing credential (EX_NOPERM).
EXIT_LOGIN_REQUIRED = 77

_STATE_DIR = f'd={RUN_DIR}; {{ [ -d "$d" ] && [ -w "$d" ]; }} || d=/tmp'

TURN_SCRIPT = f"""{_STATE_DIR}
turn=$1 check=$2 flag=$3
shift 3
rm -f "$d"/parallax-turn-* 2>/dev/null
echo $$ >"$d/parallax-turn-$turn.pid"
{SNAPSHOT}
if [ -n "$flag" ]; then
    umask 077
    cat >"$d/parallax-turn-$turn.msg" || exit 70
    set -- "$@" "$flag" "$d/parallax-turn-$turn.msg"
    exec </dev/null
fi
if [ -r {LIB} ] && [ -x /bin/bash ]; then
    exec /bin/bash -c '
. "$1"; check=$2; shift 2
parallax_load_env
if [ "$check" = 1 ]; then
    missing=$(parallax_missing_credential)
    if [ -n "$missing" ]; then
        parallax_log "login required: $missing"
        exit {EXIT_LOGIN_REQUIRED}
    fi
fi
if [ $# -eq 0 ]; then
    if [ -z "${{PARALLAX_CLI_BIN:-}}" ]; then
        parallax_log "the image names no turn command (PARALLAX_CLI_BIN)"
        exit 127
    fi
    set -- "$PARALLAX_CLI_BIN"
fi
exec "$@"' parallax-turn {LIB} "$check" "$@"
fi
if [ -r {RUN_DIR}/env.sh ]; then . {RUN_DIR}/env.sh || exit 70; fi
if [ $# -eq 0 ]; then
    if [ -z "${{PARALLAX_CLI_BIN:-}}" ]; then
        echo "parallax: the image names no turn command (PARALLAX_CLI_BIN)" >&2
        exit 127
    fi
    set -- "$PARALLAX_CLI_BIN"
fi
exec "$@"
"""

# $1: turn or term, $2: its id, $3: the first signal (TERM for a turn, HUP for a terminal).
KILL_SCRIPT = f"""{_STATE_DIR}
f="$d/parallax-$1-$2.pid"
[ -r "$f" ] || exit 0
p=$(cat "$f")
case $p in ''|*[!0-9]*) exit 0;; esac
kill -"$3" "-$p" 2>/dev/null || kill -"$3" "$p" 2>/dev/null || exit 0
i=0
while [ $i -lt 20 ] && kill -0 "-$p" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
kill -KILL "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null
rm -f "$f" "$d/parallax-$1-$2.msg"
exit 0
"""

# $1: the terminal's id (its pid file lets the service hang it up), $2: shell or cli.
TERMINAL_SCRIPT = f"""{_STATE_DIR}
echo $$ >"$d/parallax-term-$1.pid"
if [ "$2" = cli ] && [ -x {EXEC_HELPER} ]; then
    exec {EXEC_HELPER} /bin/sh -c 'exec "${{PARALLAX_CLI_BIN:?the image names no CLI}}"'
fi
if [ -x {EXEC_HELPER} ] && [ -x /bin/bash ]; then exec {EXEC_HELPER} /bin/bash -l; fi
if [ -r {RUN_DIR}/env.sh ]; then . {RUN_DIR}/env.sh; fi
exec /bin/sh
"""


def _check_turn_id(turn_id: str) -> str:
    if not TURN_ID_RE.match(turn_id):
        raise ValueError("a turn id is 1 to 64 letters, digits, '-' or '_'")
    return turn_id


def turn_argv(
    turn_id: str,
    argv: tuple[str, ...],
    *,
    check_credentials: bool = False,
    message_file_flag: str | None = None,
) -> tuple[str, ...]:
    """The exec argv that runs ``argv`` as turn ``turn_id``."""
    if message_file_flag is not None and not message_file_flag:
        raise ValueError("the message file flag cannot be empty")
    return (
        "/bin/sh",
        "-c",
        TURN_SCRIPT,
        "parallax-turn",
        _check_turn_id(turn_id),
        "1" if check_credentials else "0",
        message_file_flag or "",
        *argv,
    )


def kill_argv(turn_id: str) -> tuple[str, ...]:
    """The exec argv that interrupts turn ``turn_id`` (its whole process group)."""
    return ("/bin/sh", "-c", KILL_SCRIPT, "parallax-kill", "turn", _check_turn_id(turn_id), "TERM")


def terminal_argv(terminal_id: str, cli: bool = False) -> tuple[str, ...]:
    """A login shell with the agent's env (or, with ``cli``, the agent's CLI itself)."""
    return (
        "/bin/sh",
        "-c",
        TERMINAL_SCRIPT,
        "parallax-terminal",
        _check_turn_id(terminal_id),
        "cli" if cli else "shell",
    )


def hangup_argv(terminal_id: str) -> tuple[str, ...]:
    """The exec argv that hangs up terminal ``terminal_id`` (SIGHUP, then SIGKILL)."""
    return (
        "/bin/sh",
        "-c",
        KILL_SCRIPT,
        "parallax-kill",
        "term",
        _check_turn_id(terminal_id),
        "HUP",
    )
