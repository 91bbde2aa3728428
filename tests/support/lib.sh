# tests/support/lib.sh: what the shell tests share. A test sources it first:
#     . "$(dirname "$0")/../support/lib.sh"
# ctest runs every tests/**/test_*.sh with KINSYNC (the built command), KS_SOURCE_DIR,
# KS_BINARY_DIR and KS_FIXTURES set (tests/CMakeLists.txt). Run by hand (bash tests/x/test_y.sh),
# the source tree is the one this file is in and the command is build/kinsync there.
#
#   fail                  0; check and bad set it to 1: a test ends with `exit $fail`
#   check EXPR            evaluates the condition EXPR: prints "ok: EXPR" or "FAIL: EXPR"
#   ok WHAT, bad WHAT     print "ok   WHAT" and "FAIL WHAT" (bad also sets fail=1)
#   ks_skip WHY           prints "SKIP: WHY" and exits 77 (ctest counts the test as skipped)
#   ks_need TOOL...       ks_skip unless every TOOL is on PATH
#   ks_tmpdir VAR [TEMPLATE]  makes a temporary directory (mktemp -d [TEMPLATE]), puts its path
#                         in VAR and removes it at exit (an EXIT trap: a test with more to clean
#                         up sets its own trap instead, removing the directory too)

KS_SOURCE_DIR=${KS_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
KS_BINARY_DIR=${KS_BINARY_DIR:-$KS_SOURCE_DIR/build}
KS_FIXTURES=${KS_FIXTURES:-$KS_SOURCE_DIR/tests/data}
KINSYNC=${KINSYNC:-$KS_BINARY_DIR/kinsync}
if [ ! -x "$KINSYNC" ]; then
  echo "FAIL: no kinsync command at $KINSYNC: build it (cmake --build build) or set KINSYNC"
  exit 1
fi

fail=0
check() { if ! eval "$1"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }

ks_skip() { echo "SKIP: $*"; exit 77; }
ks_need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || ks_skip "$tool is not installed"
  done
}

ks_tmpdir() {
  local dir
  dir=$(mktemp -d ${2:+"$2"}) || { echo "FAIL: cannot make a temporary directory"; exit 1; }
  printf -v "$1" '%s' "$dir"
  # shellcheck disable=SC2064 # the path is fixed now, on purpose
  trap "rm -rf '$dir'" EXIT
}
