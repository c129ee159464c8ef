#!/usr/bin/env bash
# Packs what a bare x86-64 Linux GPU host needs to run this project's Node code on WebGPU:
# a compressed Node binary, the `webgpu` package's Linux binding, and the Vulkan loader.
# Usage (from the repository root, after `npm install`): packages/demo/scripts/pack-gpu-runtime.sh [DIR]
# Then, on the GPU host, from the project root: `source DIR/activate.sh` and run `node ...`.
set -euo pipefail
dir=${1:-.gpu-runtime}
root=$(git rev-parse --show-toplevel)
cd "$root"
grep -qxF "/$dir/" .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo "/$dir/" >> .git/info/exclude; }
rm -rf "$dir" && mkdir -p "$dir/webgpu/dist" "$dir/deb"
xz -T2 -6 -c "$(readlink -f "$(command -v node)")" > "$dir/node.xz"
src=node_modules/webgpu
[ -d "$src" ] || { echo "node_modules/webgpu is missing: run npm install first" >&2; exit 1; }
cp "$src/index.js" "$src/package.json" "$dir/webgpu/"
cp -r "$src/dist/linux-x64" "$dir/webgpu/dist/"
lists=$(mktemp -d); mkdir -p "$lists/partial"
o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
apt-get $o update >/dev/null 2>&1 || true
(cd "$dir/deb" && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1)
cat > "$dir/activate.sh" <<'ACT'
# Source from the project root on the GPU host.
_rt=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for f in "$_rt"/deb/*.deb; do dpkg -x "$f" /; done; ldconfig
[ -x "$_rt/bin/node" ] || { mkdir -p "$_rt/bin"; xz -dc "$_rt/node.xz" > "$_rt/bin/node"; chmod +x "$_rt/bin/node"; }
export PATH="$_rt/bin:$PATH"
# Let `import 'webgpu'` resolve to the packed binding when node_modules is absent.
if [ ! -d node_modules/webgpu ]; then mkdir -p node_modules && ln -sfn "$_rt/webgpu" node_modules/webgpu; fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
node --version
ACT
du -sh "$dir"
