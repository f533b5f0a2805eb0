#!/usr/bin/env bash
# Installs what the ONNX Runtime side-by-side needs (test tools only, never the
# product's): Debian's python3-torch / -numpy / -pil for the exporter (the same
# set as `make goldens`), and npm onnxruntime-node into bench/onnx/node_modules
# at the version package-lock.json pins. ONNXRUNTIME_NODE_INSTALL=skip: the CPU
# provider ships in the package; nothing else is downloaded. Idempotent, no stdin.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

missing=()
for pkg in python3-torch python3-numpy python3-pil; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]} > 0)); then
  echo "bench-onnx setup: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "bench-onnx setup: need root or sudo to install packages" >&2; exit 1; }
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

want=$(node -e 'console.log(require(process.argv[1]).packages["node_modules/onnxruntime-node"].version)' \
  "$HERE/package-lock.json")
have=$(node -e 'try { console.log(require(process.argv[1]).version) } catch { console.log("none") }' \
  "$HERE/node_modules/onnxruntime-node/package.json")
if [[ "$have" != "$want" ]]; then
  echo "bench-onnx setup: npm onnxruntime-node $want (have: $have)" >&2
  (cd "$HERE" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
