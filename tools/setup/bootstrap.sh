#!/usr/bin/env bash
# Idempotent set-up behind `make up` and `make test`: OS packages, the virtualenv, Kafka jars.
# Each step checks before it acts, so a second run on a ready machine takes a second or two.
# When something cannot be installed here, it stops and says what is missing and how to get it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
cd "$ROOT"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

# --- OS packages (Debian/Ubuntu) --------------------------------------------------------------
# command or file to look for -> Debian package that provides it
declare -A NEEDED=(
  [/usr/lib/postgresql/*/bin/postgres]=postgresql
  [redis-server]=redis-server
  [redis-sentinel]=redis-sentinel
  [java]=openjdk-17-jre-headless
  [mvn]=maven
  [git]=git
  [haproxy]=haproxy   # the ALB's data plane
  [wrk]=wrk           # load generator of the benchmarks
  [gcc]=gcc           # mypyc compiles the gateway's forwarding path
  [/usr/include/python3*/Python.h]=python3-dev
)

have() {
  case "$1" in
    /*) compgen -G "$1" >/dev/null ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

java_major() {
  java -version 2>&1 | awk -F '"' '/version/ { split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit }'
}

os_packages() {
  local missing=()
  for probe in "${!NEEDED[@]}"; do
    have "$probe" || missing+=("${NEEDED[$probe]}")
  done
  if have java && [ "$(java_major)" -lt 17 ]; then
    missing+=(openjdk-17-jre-headless)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0

  local list
  list="$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
  if ! grep -qiE '^(ID|ID_LIKE)=.*(debian|ubuntu)' /etc/os-release 2>/dev/null; then
    die "missing: $list. This set-up installs packages on Debian/Ubuntu only; install the equivalents with your package manager and run again."
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo)
    else
      die "missing: $list. Install them with: sudo apt-get install -y $list"
    fi
  fi
  say "installing OS packages: $list"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # shellcheck disable=SC2086
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $list >/dev/null
}

# --- Python virtualenv --------------------------------------------------------------------------
find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

python_env() {
  local stamp="$VENV/.come2us-installed" want
  want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local python
  python="$(find_python)" || die "Python >= 3.11 is needed; install it with: sudo apt-get install -y python3 python3-venv"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtualenv in .venv with $python"
    "$python" -m venv "$VENV" || die "could not create a virtualenv; install it with: sudo apt-get install -y python3-venv"
  fi
  say "installing Python packages (pinned by constraints.txt)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[dev]"
  echo "$want" > "$stamp"
}

# --- Kafka broker jars from Maven Central --------------------------------------------------------
kafka_jars() {
  "$VENV/bin/python" -m stack.local.kafka_jars
}

# --- checkov, in a virtualenv of its own ----------------------------------------------------------
# checkov pins boto3 and packaging to versions that conflict with moto and pytest in .venv, so
# `come2us synth` runs it from tools/checkov/.venv (pinned by tools/checkov/requirements.txt).
checkov_env() {
  local dir="$ROOT/tools/checkov" stamp want
  stamp="$dir/.venv/.come2us-installed"
  want="$(sha256sum < "$dir/requirements.txt" | cut -d' ' -f1)"
  if [ -x "$dir/.venv/bin/checkov" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  say "installing checkov into tools/checkov/.venv (pinned by tools/checkov/requirements.txt)"
  "$(find_python)" -m venv "$dir/.venv"
  "$dir/.venv/bin/python" -m pip install -q --upgrade pip
  "$dir/.venv/bin/python" -m pip install -q -r "$dir/requirements.txt"
  echo "$want" > "$stamp"
}

# --- the gateway's compiled forwarding path (services/gateway/native.py) ---------------------------
# Rebuilt only when the gateway's sources changed (~20 s); without it the gateway runs as plain
# Python, about a fifth more CPU per request.
gateway_native() {
  "$VENV/bin/python" -m services.gateway.native ensure "$ROOT/build/gateway-native" ||
    say "warning: the gateway runs as plain Python (its native build failed, see above)"
}

os_packages
python_env
kafka_jars
checkov_env
gateway_native
