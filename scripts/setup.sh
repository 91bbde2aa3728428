#!/usr/bin/env bash
# Installs everything kinsync needs to build, test and run, from Debian packages only.
# Idempotent: packages already present are left alone. Works as root or through sudo.
set -euo pipefail

# Each package is here for a reason; docs/dependencies.md says which.
PACKAGES=(
  build-essential cmake pkg-config clang libclang-rt-14-dev   # compilers, build, sanitizers, libFuzzer
  libyaml-dev            # rig, board and simulation files
  libjansson-dev         # calibration JSON, --json output, reports
  libturbojpeg0-dev      # MJPEG color frames
  libjpeg62-turbo-dev    # the same library's libjpeg API: test pictures with restart markers
  libpng-dev zlib1g-dev  # PNG output (depth/IR views, board pictures)
  libapriltag-dev        # calibration board detection
  liblapacke-dev libopenblas-dev  # least-squares solves in calibration
  cyclonedds-dev cyclonedds-tools # multi-host agents and coordinator
  libsodium-dev          # HMAC-SHA256 and SHA-256 for multi-host command authentication
  mkvtoolnix ffmpeg      # independent readers that check our recordings in the tests
  iproute2 util-linux    # network namespaces for the multi-host tests
  python3                # small test helpers
  libmicrohttpd-dev      # kinsync view: the embedded HTTP server (SSE, control requests)
  libjs-three            # kinsync view: the page's 3D point cloud (served from /usr/share/javascript/three)
  chromium chromium-driver python3-selenium curl  # kinsync view tests: a real headless browser, the HTTP API
  python3-numpy python3-pip python3-setuptools python3-wheel  # the kinsync Python package (python/), its tests and install
)

missing=()
for p in "${PACKAGES[@]}"; do
  case "$p" in \#*) continue;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
