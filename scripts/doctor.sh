#!/usr/bin/env bash
# make doctor: checks what the first `make up` needs, and says for each problem what to do.
# Exits 1 when something would stop `make up`; warnings alone leave it 0.
# Reads HTTP_BIND, HTTP_PORT, PYTHON_IMAGE, NGINX_IMAGE and POSTGRES_IMAGE as make up would (.env included).
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/.."

# The oldest versions the stack is tested with (scripts/docker-host/install-engine.sh installs
# them on Debian): Compose 2.26 for the compose files' keys (additional_contexts, the
# healthchecks' start_interval, up --wait-timeout), Engine 25 for start_interval itself.
MIN_COMPOSE=2.26.0
MIN_ENGINE=25.0.0
# Room for the images (base, web, nginx, and the benchmark's), their build cache and logs.
MIN_FREE_GB=5

# A .env beside the compose files sets what make up would use; the environment wins.
env_value() {
  local name=$1 default=$2 value
  value=${!name:-}
  if [ -z "$value" ] && [ -f .env ]; then
    value=$(sed -n "s/^${name}=//p" .env | tail -n 1 || true)
    # Compose takes a quoted value without its quotes.
    value=${value#[\"\']}
    value=${value%[\"\']}
  fi
  printf '%s' "${value:-$default}"
}

# `timeout` where there is one (GNU coreutils; gtimeout from Homebrew's on macOS), else none.
bounded() {
  local seconds=$1
  shift
  if command -v timeout >/dev/null; then
    timeout "$seconds" "$@"
  elif command -v gtimeout >/dev/null; then
    gtimeout "$seconds" "$@"
  else
    "$@"
  fi
}

failures=0
warnings=0
ok() { printf 'ok    %s\n' "$*"; }
warn() {
  printf 'warn  %s\n' "$1"
  printf '      -> %s\n' "${@:2}"
  warnings=$((warnings + 1))
}
fail() {
  printf 'FAIL  %s\n' "$1"
  printf '      -> %s\n' "${@:2}"
  failures=$((failures + 1))
}
# True when version $1 is at least $2 (both x.y.z).
at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }

finish() {
  echo
  if [ "$failures" -gt 0 ]; then
    echo "doctor: $failures problem(s) to fix before make up, $warnings warning(s)."
    exit 1
  fi
  local host
  host=$(env_value HTTP_BIND 127.0.0.1)
  # Published on every address: this machine's own is one of them.
  [ "$host" != 0.0.0.0 ] || host=127.0.0.1
  echo "doctor: ready for make up; the live page will be on http://$host:$(env_value HTTP_PORT 8080)/"
  [ "$warnings" -eq 0 ] || echo "doctor: $warnings warning(s) above are worth a look."
  exit 0
}

# 1. The Docker CLI and the engine it talks to.
if ! command -v docker >/dev/null; then
  fail "no docker command" \
    "install Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop;" \
    "on a bare Debian machine, as root: make docker-host"
  finish
fi
engine_error=$(bounded 20 docker version --format '{{.Server.Version}}' 2>&1 >/dev/null) && engine_ok=1 || engine_ok=0
if [ "$engine_ok" -eq 0 ]; then
  if [ -n "${DOCKER_HOST:-}" ]; then
    fail "no Docker engine answers at DOCKER_HOST=$DOCKER_HOST" \
      "start the engine there, or unset DOCKER_HOST to use this machine's engine" \
      "(docker said: $(printf '%s' "$engine_error" | head -n 1))"
  elif printf '%s' "$engine_error" | grep -qi "permission denied"; then
    fail "the Docker engine runs, but $(id -un) may not use it" \
      "add yourself to the docker group: sudo usermod -aG docker $(id -un), then log in again" \
      "(or use rootless Docker: https://docs.docker.com/engine/security/rootless/)"
  else
    fail "the Docker engine is not running (or not reachable)" \
      "start it: sudo systemctl start docker (Linux) or open Docker Desktop;" \
      "on a bare Debian machine, as root: make docker-host" \
      "(docker said: $(printf '%s' "$engine_error" | head -n 1))"
  fi
  finish
fi
engine=$(docker version --format '{{.Server.Version}}')
engine_number=$(printf '%s' "$engine" | grep -oE '^[0-9]+\.[0-9]+(\.[0-9]+)?' || true)
if [ -n "$engine_number" ] && ! at_least "$engine_number" "$MIN_ENGINE"; then
  warn "Docker Engine $engine is older than $MIN_ENGINE, the oldest the stack is tested with" \
    "upgrade it (https://docs.docker.com/engine/install/); the healthchecks' start_interval needs 25"
else
  ok "Docker Engine $engine answers"
fi

# 2. Who may use it.
if [ "$(id -u)" -eq 0 ]; then
  ok "running as root, which may use Docker (another user needs the docker group, or rootless Docker)"
else
  ok "$(id -un) uses Docker without root"
fi

# 3. Compose v2 and buildx.
if compose=$(docker compose version --short 2>/dev/null); then
  compose=${compose#v}
  compose_number=$(printf '%s' "$compose" | grep -oE '^[0-9]+\.[0-9]+\.[0-9]+' || true)
  if [ -n "$compose_number" ] && at_least "$compose_number" "$MIN_COMPOSE"; then
    ok "Docker Compose $compose"
  else
    fail "Docker Compose $compose is older than $MIN_COMPOSE, the oldest the stack is tested with" \
      "upgrade the compose plugin (https://docs.docker.com/compose/install/linux/)"
  fi
else
  fail "no Docker Compose v2 (the docker compose plugin)" \
    "install it: apt-get install docker-compose-plugin (Docker's packages) or docker-compose (Debian's)," \
    "or see https://docs.docker.com/compose/install/linux/; the old docker-compose v1 will not do"
fi
if buildx=$(docker buildx version 2>/dev/null); then
  ok "buildx $(printf '%s' "$buildx" | awk '{print $2}')"
else
  fail "no buildx (BuildKit): the images are built with named contexts and cache mounts" \
    "install it: apt-get install docker-buildx-plugin (Docker's packages) or docker-buildx (Debian's)"
fi

# 4. The port nginx publishes.
bind=$(env_value HTTP_BIND 127.0.0.1)
port=$(env_value HTTP_PORT 8080)
probe_host=$bind
[ "$probe_host" != 0.0.0.0 ] || probe_host=127.0.0.1
if (exec 3<>"/dev/tcp/$probe_host/$port") 2>/dev/null; then
  holder=$(docker ps --filter "publish=$port" --format '{{.Names}}' | head -n 1 || true)
  holder_project=$(docker ps --filter "publish=$port" --format '{{.Label "com.docker.compose.project"}}' | head -n 1 || true)
  [ -z "$holder_project" ] || holder="$holder (compose project $holder_project)"
  # The project make up runs here (COMPOSE_PROJECT_NAME, or this folder's name).
  own_project=$(docker compose -f compose.yaml config 2>/dev/null | sed -n 's/^name: //p' | head -n 1 || true)
  if [ -n "$holder_project" ] && [ "$holder_project" = "$own_project" ]; then
    ok "port $port on $bind is this checkout's own stack ($holder): make up updates it in place"
  elif [ -n "$holder" ]; then
    fail "port $port on $bind is taken by the container $holder" \
      "stop it (make down, in that project), or use another port: HTTP_PORT=8081 make up"
  else
    fail "port $port on $bind is taken by another program" \
      "find it (ss -ltnp 'sport = :$port'), stop it, or use another port: HTTP_PORT=8081 make up"
  fi
else
  ok "port $port on $bind is free for nginx"
fi

# 5. The base images the Dockerfiles build from.
# Each tag is its Dockerfile's ARG default unless the environment or .env names another.
python_image=$(env_value PYTHON_IMAGE "$(scripts/dockerfile-arg.sh services/web/Dockerfile PYTHON_IMAGE)")
nginx_image=$(env_value NGINX_IMAGE "$(scripts/dockerfile-arg.sh services/nginx/Dockerfile NGINX_IMAGE)")
images=("$python_image" "$nginx_image")
# Postgres's, while compose.db.yaml is there to run it (docs/database.md).
if [ -f compose.db.yaml ]; then
  images+=("$(env_value POSTGRES_IMAGE "$(scripts/dockerfile-arg.sh services/db/Dockerfile POSTGRES_IMAGE)")")
fi
for image in "${images[@]}"; do
  if docker image inspect "$image" >/dev/null 2>&1; then
    ok "base image $image is present"
  elif bounded 30 docker manifest inspect "$image" >/dev/null 2>&1; then
    ok "base image $image is not here yet, and its registry answers: make up pulls it"
  else
    fail "base image $image is neither present nor pullable (no registry reachable?)" \
      "docker pull $image once you are online, or build local stand-ins for it (CI's, from Debian packages): scripts/docker-host/build-base-images.sh"
  fi
done

# 6. Python 3 with venv, for make test's virtualenv (make up does not need it).
if command -v python3 >/dev/null && python3 -m venv --help >/dev/null 2>&1; then
  ok "$(python3 --version) with venv, for make test"
else
  warn "no Python 3 with venv: make up works, make test cannot make its virtualenv" \
    "install it: apt-get install python3-venv (Debian, Ubuntu), or python.org's installer"
fi

# 7. Disk space where Docker keeps its images.
root_dir=$(docker info --format '{{.DockerRootDir}}' 2>/dev/null || true)
where=$root_dir
[ -d "$where" ] || where=.
free_kb=$(df -Pk "$where" | awk 'NR == 2 {print $4}')
free_gb=$((free_kb / 1024 / 1024))
if [ "$free_gb" -lt "$MIN_FREE_GB" ]; then
  warn "only $free_gb GiB free on $where (Docker's images and build cache live there)" \
    "free at least $MIN_FREE_GB GiB: docker system prune removes stopped containers, unused images and build cache"
else
  ok "$free_gb GiB free on $where"
fi

finish
