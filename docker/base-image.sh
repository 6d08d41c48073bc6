#!/usr/bin/env bash
# Builds an offline stand-in for python:3.11-slim (no Docker Hub here): a Debian bookworm
# minbase root from debootstrap, plus Debian's python3 (3.11), pip, venv and this host's CA
# certificates (the registries are reached through an egress proxy with its own CA).
set -euo pipefail
tag=${1:-python:3.11-slim}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log"; exit 1; }
tar -C "$work/rootfs" -c . | docker import - debian-bookworm-minbase:local >/dev/null

mkdir -p "$work/ctx/certs"
cp /usr/local/share/ca-certificates/*.crt "$work/ctx/certs/" 2>/dev/null || true
cat >"$work/ctx/Dockerfile" <<'DOCKERFILE'
FROM debian-bookworm-minbase:local
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-pip python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY certs/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
DOCKERFILE
docker build --network=host -q -t "$tag" "$work/ctx" >/dev/null
echo "built $tag"
