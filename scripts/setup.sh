#!/usr/bin/env bash
# Set up wgnn on a fresh Debian/Ubuntu machine: a Vulkan driver if none is present, then a virtual
# environment in .venv with wgnn and its demos' packages installed. With --test it also installs what
# the tests need (Python packages, Xvfb and xwd for the demo window test, alsa-utils' recordings).
#   bash scripts/setup.sh          # then: .venv/bin/wgnn demo face
#   bash scripts/setup.sh --test   # then: .venv/bin/python -m pytest
set -euo pipefail
cd "$(dirname "$0")/.."

extras="[demo]"
[ "${1:-}" = "--test" ] && extras="[demo,test]"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# A Vulkan loader plus at least one driver (ICD). Without a GPU driver, Mesa's software one (lavapipe).
need=()
ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || need+=(libvulkan1)
if ! compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null && ! compgen -G '/etc/vulkan/icd.d/*.json' >/dev/null; then
  need+=(mesa-vulkan-drivers)
fi
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# The demo window test: a virtual X display, xwd for screenshots, and the X libraries glfw loads.
if [ "$extras" = "[demo,test]" ]; then
  command -v Xvfb >/dev/null || need+=(xvfb)
  command -v xwd >/dev/null || need+=(x11-apps)
  # recorded speech and noise for the voice-activity tests (Silero VAD)
  [ -f /usr/share/sounds/alsa/Front_Center.wav ] || need+=(alsa-utils)
  for lib in libXrandr.so.2:libxrandr2 libXcursor.so.1:libxcursor1 libXi.so.6:libxi6 libXinerama.so.1:libxinerama1 \
             libX11-xcb.so.1:libx11-xcb1; do
    ldconfig -p 2>/dev/null | grep -q "${lib%%:*}" || need+=("${lib##*:}")
  done
fi
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: please install a Vulkan loader and driver (${need[*]}) with your package manager" >&2
    exit 1
  fi
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "setup: wgnn needs Python >= 3.11, found $(python3 --version)" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras}"
echo "setup: done ($(.venv/bin/python -c 'import wgnn; print("wgnn", wgnn.__version__)'))"
