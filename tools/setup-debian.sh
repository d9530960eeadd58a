#!/usr/bin/env bash
# Installs what p2pnode needs on Debian 12 (only the packages that are missing), then
# configures and builds it in ./build. Runs as root, or uses sudo for apt-get.
# Usage: tools/setup-debian.sh            (idempotent; a second run only rebuilds)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  g++ meson ninja-build pkg-config python3 python3-numpy python3-matplotlib cmake curl patch
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libyaml-cpp-dev
  libxtensor-dev xtl-dev libxtensor-blas-dev libopenblas-dev
  doctest-dev libcli11-dev libspdlog-dev libfmt-dev zlib1g-dev libsodium-dev
  dataset-fashion-mnist
  openmpi-bin slurm-wlm munge graphviz
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# libzmq's source from Debian's archive, for the bounded libzmq the binary links
# (subprojects/libzmq.wrap; meson checks its SHA-256).
zmq_src=subprojects/packagecache/zeromq3_4.3.4.orig.tar.gz
if [ ! -f "$zmq_src" ]; then
  echo "setup: fetching libzmq 4.3.4's source from Debian's archive"
  mkdir -p subprojects/packagecache
  curl -fsSL --retry 3 -o "$zmq_src.part" \
    http://deb.debian.org/debian/pool/main/z/zeromq3/zeromq3_4.3.4.orig.tar.gz
  mv "$zmq_src.part" "$zmq_src"
fi

# Quiet, but a failed configure shows why.
reconfigure=()
[ -f build/build.ninja ] && reconfigure=(--reconfigure)
if ! log=$(meson setup "${reconfigure[@]}" build --wrap-mode=nodownload 2>&1); then
  echo "$log" | tail -40 >&2
  echo "setup: meson setup failed" >&2
  exit 1
fi
echo "setup: building p2pnode"
meson compile -C build >/dev/null
echo "setup: built build/p2pnode"
