#!/usr/bin/env bash
# Builds the Dockerfile and runs the image against the simulator: `make image-test` (opt-in and slow,
# about 2 minutes the first time, 30 s after; not part of `make test`).
#
# No registry is needed: the base image the Dockerfile's PYTHON_IMAGE build-arg points at is made
# here, from a minimal Debian bookworm (Python 3.11) made with debootstrap, and tagged
# localhost/python:3.11-slim-bookworm. buildah builds the Dockerfile (chroot isolation, vfs storage);
# podman runs the image the way the Helm chart does: read-only root file system, every capability
# dropped, no new privileges, its own user. The run must answer /healthz, /readyz and /metrics
# from a successful poll of the simulator, pass the image's HEALTHCHECK, and stop cleanly on SIGTERM;
# the image must hold the installed wheel only (no sources, wheels or pip in the venv).
#
# Container storage lives in $IMAGE_TEST_DIR (default /var/tmp/modelarts-exporter-image-test), apart
# from any other containers on the machine; delete the folder to start afresh. Runs as root on
# Debian 12; installs buildah, podman, runc and debootstrap when missing.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${IMAGE_TEST_DIR:-/var/tmp/modelarts-exporter-image-test}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=localhost/python:3.11-slim-bookworm
image=localhost/modelarts-exporter:test
exporter_cli="$repo/.venv/bin/modelarts-exporter"
storage=(--root "$dir/storage" --runroot "$dir/run" --storage-driver vfs)
buildah=(buildah "${storage[@]}")
# runc, not crun: crun refuses hosts with hybrid cgroups. Explicit ulimits: the defaults raise them.
podman=(podman "${storage[@]}" --runtime runc)
limits=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
container=modelarts-exporter-image-test
sim_pid=""

log() { printf '== %s\n' "$*"; }
fail() { printf 'image-test: FAILED: %s\n' "$*" >&2; exit 1; }
free_port() { "$repo/.venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

cleanup() {
    "${podman[@]}" rm --force --ignore "$container" >/dev/null 2>&1 || true
    [[ -z $sim_pid ]] || kill "$sim_pid" 2>/dev/null || true
}
trap cleanup EXIT

ensure_packages() {
    local packages=()
    command -v buildah >/dev/null || packages+=(buildah)
    command -v podman >/dev/null || packages+=(podman)
    command -v runc >/dev/null || packages+=(runc)
    command -v debootstrap >/dev/null || packages+=(debootstrap)
    [[ ${#packages[@]} -gt 0 ]] || return 0
    log "installing ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null
}

# The stand-in for python:3.11-slim-bookworm: Debian's python3 (3.11) with pip and venv, and
# `python` on PATH as in the official image.
ensure_base_image() {
    if "${buildah[@]}" inspect --type image "$base" >/dev/null 2>&1; then
        return
    fi
    log "making $base with debootstrap from $mirror"
    local rootfs="$dir/rootfs" ctr
    rm -rf "$rootfs"
    mkdir -p "$dir"
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates \
        bookworm "$rootfs" "$mirror" >"$dir/debootstrap.log" 2>&1 || fail "debootstrap, see $dir/debootstrap.log"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    ctr=$("${buildah[@]}" from scratch)
    "${buildah[@]}" add "$ctr" "$rootfs/" / >/dev/null
    "${buildah[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd python3 "$ctr"
    "${buildah[@]}" commit --quiet --format docker --rm "$ctr" "$base" >/dev/null
    rm -rf "$rootfs"
}

build_image() {
    log "building $image"
    local trust=()
    # The build stage fetches its build backend from PyPI; let it trust what this host trusts
    # (an egress proxy's CA, say). A build-time volume: nothing of it lands in the image.
    [[ ! -f /etc/ssl/certs/ca-certificates.crt ]] ||
        trust=(--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
    "${buildah[@]}" bud --isolation chroot --format docker --layers=false --quiet \
        --build-arg "PYTHON_IMAGE=$base" \
        --build-arg "REVISION=$(git -C "$repo" rev-parse HEAD)" \
        "${trust[@]}" --tag "$image" "$repo" >"$dir/build.log" 2>&1 || {
        tail -n 30 "$dir/build.log" >&2
        fail "buildah bud, see $dir/build.log"
    }
    "${buildah[@]}" rmi --prune >/dev/null # the images of earlier runs
}

check_image_contents() {
    log "checking what the image holds"
    local ctr mnt site user
    user=$("${buildah[@]}" inspect --type image --format '{{.Docker.Config.User}}' "$image")
    [[ $user == 65532:65532 ]] || fail "image user is '$user', not 65532:65532"
    ctr=$("${buildah[@]}" from --quiet "$image")
    mnt=$("${buildah[@]}" mount "$ctr")
    site=$(echo "$mnt"/opt/venv/lib/python3*/site-packages)
    local problems=()
    [[ ! -e $mnt/src && ! -e $mnt/wheels ]] || problems+=("build-stage files (/src or /wheels)")
    [[ ! -e $mnt/opt/venv/bin/pip ]] || problems+=("pip in the venv")
    [[ -x $mnt/opt/venv/bin/modelarts-exporter ]] || problems+=("no modelarts-exporter in the venv")
    [[ -d $site/modelarts_exporter && ! -e $site/tests ]] || problems+=("not the wheel's layout")
    compgen -G "$site/modelarts_exporter/__pycache__/*.pyc" >/dev/null || problems+=("no byte-code")
    # The installed set is exactly requirements.lock plus the exporter itself: nothing unlocked.
    local drift
    drift=$("$repo/.venv/bin/python" - "$site" "$repo/requirements.lock" <<'PY'
import re, sys
from pathlib import Path
def norm(name): return re.sub(r"[-_.]+", "-", name).lower()
installed = {}
for info in Path(sys.argv[1]).glob("*.dist-info"):
    name, _, version = info.name.removesuffix(".dist-info").partition("-")
    installed[norm(name)] = version
locked = {norm(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)", Path(sys.argv[2]).read_text(), re.M)}
installed.pop("modelarts-exporter", None)
if installed != locked:
    extra = sorted(set(installed.items()) - set(locked.items()))
    missing = sorted(set(locked.items()) - set(installed.items()))
    print(f"installed but not locked {extra}; locked but not installed {missing}")
PY
)
    [[ -z $drift ]] || problems+=("$drift")
    "${buildah[@]}" umount "$ctr" >/dev/null
    "${buildah[@]}" rm "$ctr" >/dev/null
    [[ ${#problems[@]} -eq 0 ]] || fail "image content: ${problems[*]}"
}

wait_for() {
    local url=$1 deadline=$((SECONDS + 30))
    until curl -fsS -o /dev/null "$url" 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

run_image() {
    [[ -x $exporter_cli ]] || fail "$exporter_cli missing: run make first"
    local sim_port port token=image-test-token
    sim_port=$(free_port)
    port=$(free_port)
    log "running $image against the simulator"
    "$exporter_cli" simulate --listen-address "127.0.0.1:$sim_port" --token "$token" --size 500 \
        >"$dir/simulator.log" 2>&1 &
    sim_pid=$!
    wait_for "http://127.0.0.1:$sim_port/_sim/health" || fail "simulator did not start, see $dir/simulator.log"
    "${podman[@]}" run --detach --name "$container" "${limits[@]}" --network host \
        --read-only --cap-drop ALL --security-opt no-new-privileges \
        --no-healthcheck \
        --env "MODELARTS_EXPORTER_ENDPOINT=http://127.0.0.1:$sim_port" \
        --env MODELARTS_EXPORTER_PROJECT_ID=demo-project \
        --env "MODELARTS_EXPORTER_AUTH_TOKEN=$token" \
        --env "MODELARTS_EXPORTER_LISTEN_ADDRESS=127.0.0.1:$port" \
        --env MODELARTS_EXPORTER_POLL_INTERVAL_SECONDS=2 \
        "$image" >/dev/null
    local url="http://127.0.0.1:$port"
    wait_for "$url/readyz" || {
        "${podman[@]}" logs "$container" >&2 || true
        fail "/readyz did not answer 200 within 30 s"
    }
    curl -fsS "$url/healthz" >/dev/null || fail "/healthz"
    local metrics
    metrics=$(curl -fsS "$url/metrics") || fail "/metrics"
    grep -q '^modelarts_exporter_up{project_id="demo-project"} 1.0$' <<<"$metrics" ||
        fail "/metrics lacks modelarts_exporter_up 1 for the simulated project"
    # The image's HEALTHCHECK command, run by hand: podman's health timers need systemd.
    local health=()
    readarray -d '' health < <("${buildah[@]}" inspect --type image "$image" | "$repo/.venv/bin/python" -c '
import json, sys
kind, *command = json.load(sys.stdin)["Docker"]["config"]["Healthcheck"]["Test"]
assert kind == "CMD", kind
print("\0".join(command), end="\0")')
    [[ ${#health[@]} -gt 0 ]] || fail "the image has no HEALTHCHECK"
    "${podman[@]}" exec "$container" "${health[@]}" || fail "the image's HEALTHCHECK"
    local logs
    logs=$("${podman[@]}" logs "$container" 2>&1)
    [[ $logs != *"$token"* ]] || fail "the token appears in the container's log"
    "${podman[@]}" stop --time 10 "$container" >/dev/null
    local code
    code=$("${podman[@]}" inspect --format '{{.State.ExitCode}}' "$container")
    [[ $code == 0 ]] || fail "exit code $code after SIGTERM"
}

mkdir -p "$dir"
ensure_packages
ensure_base_image
build_image
check_image_contents
run_image
log "image-test passed: $image builds, holds only the wheel and exactly the locked dependencies, and serves from a read-only root"
