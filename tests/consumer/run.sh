#!/usr/bin/env bash
# The installed library as a researcher would use it: `meson install` into a scratch DESTDIR,
# then the consumer program built outside the tree with `pkg-config --cflags --libs p2pnode`
# (nothing of the source tree on its include path) and run.
# Usage: run.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
meson install -C "$build" --destdir "$scratch/root" --no-rebuild --quiet
pc=$(find "$scratch/root" -name p2pnode.pc | head -n 1)
[ -n "$pc" ] || { echo "install: no p2pnode.pc installed"; exit 1; }
echo "installed: ${pc#"$scratch/root"}"
for h in robust/robust.hpp nn/model.hpp config/nodes_config.hpp; do
  [ -f "$(find "$scratch/root" -path "*/include/p2pnode/$h" | head -n 1)" ] || { echo "install: p2pnode/$h missing"; exit 1; }
done
if find "$scratch/root" -path '*/include/*' -name '*.hpp' | xargs grep -l '#include "src/' 2>/dev/null; then
  echo "install: a public header includes src/"; exit 1
fi
export PKG_CONFIG_PATH="$(dirname "$pc")"
flags=$(pkg-config --cflags --libs p2pnode)
echo "pkg-config --cflags --libs p2pnode: $flags"
cp "$src/tests/consumer/consumer.cpp" "$scratch/"
cd "$scratch"
# shellcheck disable=SC2086
g++ -O1 consumer.cpp -o consumer $flags
./consumer
