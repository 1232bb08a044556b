#!/usr/bin/env bash
# Virtual environments for the benchmark suite's peers, which cannot share wgnn's process:
#   .venv-peers/ort-webgpu   ONNX Runtime's WebGPU build (it installs the module name "onnxruntime")
#   .venv-peers/wonnx        wonnx (a Rust ONNX runtime on wgpu)
# ONNX Runtime's WebGPU provider (Dawn) refuses Mesa 22's lavapipe; with --mesa-backports this also
# unpacks Debian bookworm-backports' Mesa into .venv-peers/mesa (not installed system-wide) and writes
# .venv-peers/mesa/env.sh: source it and the whole suite, wgnn included, runs on that driver.
# Usage: bash bench/setup_peers.sh [--mesa-backports]
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .venv-peers
for peer in ort-webgpu wonnx; do
  pkg=$([ "$peer" = ort-webgpu ] && echo onnxruntime-webgpu || echo wonnx)
  [ -x ".venv-peers/$peer/bin/python" ] || python3 -m venv ".venv-peers/$peer"
  ".venv-peers/$peer/bin/python" -m pip install -q "$pkg" numpy || echo "setup_peers: $pkg did not install" >&2
done
if [ "${1:-}" = "--mesa-backports" ]; then
  dir=$PWD/.venv-peers/mesa
  rm -rf "$dir" && mkdir -p "$dir/debs" /tmp/wgnn-apt/lists/partial
  echo "deb http://deb.debian.org/debian bookworm-backports main" > /tmp/wgnn-apt/sources.list
  o="-o Dir::Etc::SourceList=/tmp/wgnn-apt/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=/tmp/wgnn-apt/lists"
  apt-get $o update -qq
  # Mesa 25's lavapipe links the system's LLVM 15; it needs a newer libdrm than bookworm's.
  (cd "$dir/debs" && apt-get $o download -t bookworm-backports mesa-vulkan-drivers libdrm2 libdrm-amdgpu1 2>/dev/null)
  for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$dir/root"; done
  lib=$(ls "$dir"/root/usr/lib/*/libvulkan_lvp.so | head -1)
  sed "s|\"library_path\": *\"[^\"]*\"|\"library_path\": \"$lib\"|" "$dir/root/usr/share/vulkan/icd.d/lvp_icd.json" \
    > "$dir/lvp_icd.json"
  cat > "$dir/env.sh" <<ENV
# Source this before \`wgnn bench\`: every column, wgnn's and the peers', then runs on this lavapipe.
export VK_ICD_FILENAMES=$dir/lvp_icd.json VK_DRIVER_FILES=$dir/lvp_icd.json
export LD_LIBRARY_PATH=$(dirname "$lib")\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
ENV
  echo "setup_peers: Mesa $(dpkg-deb -f "$dir"/debs/mesa-vulkan-drivers_*.deb Version) unpacked; source $dir/env.sh"
fi
