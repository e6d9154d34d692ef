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
