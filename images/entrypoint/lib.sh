# shellcheck shell=bash
# Shared by parallax-entrypoint and parallax-exec (sourced, bash).
#
# Secrets reach the agent through a file on the /run/parallax tmpfs instead of the container's
# Env, so that they never show up in `docker inspect`. Both the long-running agent and every
# `docker exec` turn load the same file, so they see the same environment.

PARALLAX_RUN_DIR=${PARALLAX_RUN_DIR:-/run/parallax}
# Without the /run/parallax tmpfs (plain `docker run` with a read-only root) the run dir is not
# writable; /tmp is always a tmpfs under the service's hardening, so state goes there instead.
PARALLAX_FALLBACK_RUN_DIR=/tmp/parallax

parallax_log() {
    printf 'parallax: %s\n' "$*" >&2
}

# The directory where the pid file and status files live for this container.
parallax_state_dir() {
    if [[ -d $PARALLAX_RUN_DIR && -w $PARALLAX_RUN_DIR ]]; then
        printf '%s\n' "$PARALLAX_RUN_DIR"
    else
        [[ -d $PARALLAX_FALLBACK_RUN_DIR ]] || mkdir -m 0700 "$PARALLAX_FALLBACK_RUN_DIR" 2>/dev/null || true
        printf '%s\n' "$PARALLAX_FALLBACK_RUN_DIR"
    fi
}

# Wait up to PARALLAX_WAIT_ENV_S seconds for the service to finish writing the env file. The
# service can only write it after the container started (the tmpfs does not exist before), so
# the agent must not start before it is complete.
parallax_wait_for_env() {
    local wait_s=${PARALLAX_WAIT_ENV_S:-0}
    [[ $wait_s =~ ^[0-9]+$ ]] || { parallax_log "ignoring PARALLAX_WAIT_ENV_S='$wait_s' (not a whole number)"; return 0; }
    (( wait_s > 0 )) || return 0
    local deadline=$(( SECONDS + wait_s ))
    while [[ ! -e $PARALLAX_RUN_DIR/env.ready ]]; do
        if (( SECONDS >= deadline )); then
            parallax_log "$PARALLAX_RUN_DIR/env.ready did not appear within ${wait_s}s; starting without it"
            return 0
        fi
        sleep 0.1
    done
}

# Export every NUL-separated KEY=VALUE record of the env file. Values may hold any byte but NUL
# (newlines, quotes, '='), so the file is never parsed by a shell.
parallax_load_env() {
    local file=$PARALLAX_RUN_DIR/env record key
    [[ -r $file ]] || file=/dev/null
    while IFS= read -r -d '' record || [[ -n $record ]]; do
        [[ -n $record ]] || continue
        key=${record%%=*}
        if [[ $record != *=* || ! $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
            # Name only: the value may be a secret.
            parallax_log "skipping an env record with an invalid name (${key:0:64})"
            continue
        fi
        export "$key=${record#*=}"
    done <"$file"
    # The service delivers Google credentials as GOOGLE_API_KEY; the Gemini CLI reads
    # GEMINI_API_KEY for the Gemini API.
    if [[ ${PARALLAX_AGENT_TYPE:-} == gemini && -z ${GEMINI_API_KEY:-} && -n ${GOOGLE_API_KEY:-} ]]; then
        export GEMINI_API_KEY=$GOOGLE_API_KEY
    fi
    parallax_cli_setup
}

# What a CLI needs from its environment before it runs, on a closed network (called by
# parallax_load_env, so the agent, every turn and every terminal see the same).
parallax_cli_setup() {
    local home=${HOME:-/home/agent}
    case ${PARALLAX_AGENT_TYPE:-} in
        gemini)
            # gemini-cli calls a GOOGLE_GEMINI_BASE_URL the "gateway" auth type, which its own
            # non-interactive check then refuses. With a Gemini API key, the system defaults
            # select the API-key auth instead (a user's own settings still win); the base URL
            # is honoured by that auth type too.
            if [[ -n ${GOOGLE_GEMINI_BASE_URL:-} && -n ${GEMINI_API_KEY:-} &&
                -z ${GEMINI_CLI_SYSTEM_DEFAULTS_PATH:-} && -r /etc/gemini-cli/api-key-defaults.json ]]; then
                export GEMINI_CLI_SYSTEM_DEFAULTS_PATH=/etc/gemini-cli/api-key-defaults.json
            fi
            ;;
        aider)
            # Aider downloads litellm's model price table at every start unless its cache (kept a
            # day) holds one; seed the cache with the table litellm ships.
            local seed=/opt/aider/model-prices.json
            local cache=$home/.aider/caches/model_prices_and_context_window.json size=0
            [[ -r $seed ]] || return 0
            [[ -f $cache ]] && size=$(stat -c %s "$cache" 2>/dev/null || echo 0)
            if (( size < 1024 )) || [[ -n $(find "$cache" -mmin +1380 2>/dev/null) ]]; then
                mkdir -p "${cache%/*}" 2>/dev/null && cp "$seed" "$cache" 2>/dev/null
            fi
            ;;
    esac
    return 0
}

# Print what credential is missing for this agent type, or nothing when the agent can log in.
# A login saved in the home directory (shared per execution) counts as a credential.
parallax_missing_credential() {
    local home=${HOME:-/home/agent}
    case ${PARALLAX_AGENT_TYPE:-} in
        claude)
            [[ -n ${ANTHROPIC_API_KEY:-}${ANTHROPIC_AUTH_TOKEN:-}${CLAUDE_CODE_OAUTH_TOKEN:-} ]] && return 0
            [[ -s $home/.claude/.credentials.json ]] && return 0
            echo "ANTHROPIC_API_KEY is not set (claude needs an API key or a login)"
            ;;
        codex)
            [[ -n ${OPENAI_API_KEY:-}${CODEX_API_KEY:-} ]] && return 0
            [[ -s ${CODEX_HOME:-$home/.codex}/auth.json ]] && return 0
            echo "OPENAI_API_KEY is not set (codex needs an API key or a login)"
            ;;
        gemini)
            [[ -n ${GEMINI_API_KEY:-}${GOOGLE_API_KEY:-}${GOOGLE_APPLICATION_CREDENTIALS:-} ]] && return 0
            [[ -s $home/.gemini/oauth_creds.json ]] && return 0
            echo "GEMINI_API_KEY is not set (gemini needs GEMINI_API_KEY or GOOGLE_API_KEY, or a login)"
            ;;
        aider)
            local name
            for name in ANTHROPIC_API_KEY OPENAI_API_KEY GEMINI_API_KEY GOOGLE_API_KEY \
                DEEPSEEK_API_KEY OPENROUTER_API_KEY AZURE_API_KEY; do
                [[ -n ${!name:-} ]] && return 0
            done
            echo "no model API key is set (aider needs one of ANTHROPIC_API_KEY, OPENAI_API_KEY, GEMINI_API_KEY)"
            ;;
    esac
    return 0
}

# The agent's heartbeat (docs/reliability.md). The service mounts a FIFO at
# $PARALLAX_RUN_DIR/heartbeat and reads it without running anything in the container: every
# PARALLAX_HEARTBEAT_S seconds (default 5) one line goes into it, "ok" while the agent process
# and the entrypoint are alive and not stopped and the CLI can run, else what is wrong. Only
# builtins run per beat (no process is started), so an idle fleet's beats cost next to nothing.
# Without the FIFO (the image run by hand, an older service) there is nothing to do.
parallax_heartbeat() {
    local agent=$1 every=${PARALLAX_HEARTBEAT_S:-5} channel=$PARALLAX_RUN_DIR/heartbeat
    [[ -p $channel ]] || return 0
    [[ $every =~ ^[1-9][0-9]{0,3}$ ]] || every=5
    # Read-write: a write never fails for want of a reader while the service is away (the
    # kernel keeps up to 64 KiB, hours of beats, until the service reads them).
    exec 3<>"$channel" || return 0
    # A pipe that nobody writes: a read with a timeout on it is a sleep without a process.
    exec 4<> <(:) || return 0
    while :; do
        parallax_judge "$agent" "$$"
        printf '%s\n' "$REPLY" >&3 || return 0
        read -r -t "$every" -u 4 _
    done
}

# parallax_judge PID...: REPLY=ok when every PID is alive and not stopped and the CLI
# (PARALLAX_CLI_BIN) can run, else one line saying what is wrong. Builtins only.
parallax_judge() {
    local pid
    for pid in "$@"; do
        parallax_process_state "$pid"
        case $REPLY in
            "" | Z | X | x) REPLY="process $pid is not running"; return ;;
            T | t) REPLY="process $pid is stopped"; return ;;
        esac
    done
    if [[ -n ${PARALLAX_CLI_BIN:-} ]] && ! parallax_cli_runs "$PARALLAX_CLI_BIN"; then
        REPLY="$PARALLAX_CLI_BIN is not installed or not executable"
        return
    fi
    REPLY=ok
}

# REPLY=the state letter of process $1 (R, S, D, T, Z, ...), empty when there is none. Read
# from the State line of /proc/PID/status, which comes before any line a process can shape.
parallax_process_state() {
    local key value
    REPLY=
    [[ $1 =~ ^[0-9]+$ ]] || return 0
    {
        while read -r key value _; do
            if [[ $key == State: ]]; then
                REPLY=$value
                return
            fi
        done <"/proc/$1/status"
    } 2>/dev/null
}

# Whether a program can be run: found on PATH (never the shell's hash table, which would
# remember a CLI removed since) as an executable file.
parallax_cli_runs() {
    local dir
    if [[ $1 == */* ]]; then
        [[ -f $1 && -x $1 ]]
        return
    fi
    local IFS=:
    for dir in $PATH; do
        [[ -f ${dir:-.}/$1 && -x ${dir:-.}/$1 ]] && return 0
    done
    return 1
}
