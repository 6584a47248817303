# Shared helpers for Hack/ scripts. Source it; do not run it.
set -euo pipefail

TANDEM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TANDEM_ROOT

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs apt-get install for the packages that are not installed yet; apt-get update once.
ensure_apt() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    if [ -z "${TANDEM_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        export TANDEM_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Installs a PyPI tool into Hack's own virtual environment unless its command is there already.
ensure_pip() {
    local command="$1" package="$2"
    local venv="$TANDEM_ROOT/.build-venv"
    [ -x "$venv/bin/$command" ] && return 0
    if [ ! -x "$venv/bin/pip" ]; then
        rm -rf "$venv"
        command -v python3 >/dev/null || ensure_apt python3
        python3 -m venv "$venv" >&2 2>/dev/null || { ensure_apt python3-venv && python3 -m venv "$venv" >&2; }
    fi
    log "installing $package from PyPI"
    "$venv/bin/pip" install -q "$package" >&2
}

# CPU time (user + system, all threads) that the given processes have used so far, in clock ticks
# (`getconf CLK_TCK` a second); PID 0 stands for no process and counts nothing. CPU time per
# request is the cost that stays meaningful on a busy machine, where requests per second do not.
cpu_ticks() {
    local total=0 pid
    for pid in "$@"; do
        [ "$pid" = 0 ] || total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}

venv_bin() { printf '%s/.build-venv/bin/%s' "$TANDEM_ROOT" "$1"; }

# Prints the folder of the shared fixtures (traffic captured from real API servers):
# $TANDEM_FIXTURES, else shared/fixtures beside the repository or one level up; nothing if none.
shared_fixtures() {
    local candidate
    for candidate in "${TANDEM_FIXTURES:-}" "$TANDEM_ROOT/../shared/fixtures" "$TANDEM_ROOT/../../shared/fixtures"; do
        if [ -n "$candidate" ] && [ -d "$candidate" ]; then (cd "$candidate" && pwd); return 0; fi
    done
}

# The system packages every build needs.
ensure_build_deps() { ensure_apt libyaml-dev libssl-dev pkg-config; }

# Builds the tandem binary (debug unless CONFIGURATION=release) and prints its path.
build_tandem() {
    local configuration="${CONFIGURATION:-debug}"
    (cd "$TANDEM_ROOT" && swift build -c "$configuration" --product tandem >&2)
    printf '%s/.build/%s/tandem' "$TANDEM_ROOT" "$configuration"
}
