#!/usr/bin/env bash
# The library as a user gets it: `cmake --install` into a temporary prefix, then, using nothing but
# that prefix:
#  - the layout: public headers (each compiles alone, kinsync.h includes them all, none of the
#    internal or generated ones such as idlc's kinsync_msgs.h), shared libraries with their SONAME
#    and the static ones, kinsync.pc / kinsync-sim.pc, the CMake package, the command, a man page
#    per command;
#  - the core alone: examples/c/k4a_devices.c links with `pkg-config kinsync` (shared, and static
#    from libkinsync.a with `pkg-config --static`), and neither line nor the program names a
#    library of the simulator (libkinsync-sim, libapriltag, libturbojpeg, libpng, lapacke, ddsc);
#    it runs on the libk4a test double;
#  - every example of examples/c builds with pkg-config AND with find_package(kinsync), and runs:
#    skews of a simulated rig, a recording, the recordings read back as frame sets, and one set
#    fused to PLY (rig calibration from `kinsync calibrate` on the recorded demo rig).
set -u
B=${KS_BINARY_DIR:?}; SRC=${KS_SOURCE_DIR:?}
for tool in cc pkg-config cmake readelf; do
  command -v $tool >/dev/null || { echo "SKIP: $tool is not installed (scripts/setup.sh installs it)"; exit 77; }
done
T=$(mktemp -d /tmp/ks-install.XXXXXX); trap 'rm -rf "$T"' EXIT
P=$T/prefix
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
check() { if eval "$1"; then ok "$2"; else bad "$2"; fi; }
# Under ASan (KS_SANITIZE) the installed libraries are instrumented: programs are built the same way.
# Under TSan (KS_TSAN) likewise with -fsanitize=thread.
SAN=""; [ "${KS_SANITIZE:-OFF}" = ON ] && SAN="-fsanitize=address,undefined"
[ "${KS_TSAN:-OFF}" = ON ] && SAN="-fsanitize=thread"
CC="cc -std=c11 -Wall -Wextra -Werror $SAN"

cmake --install "$B" --prefix "$P" > "$T/install.log" 2>&1 || { cat "$T/install.log"; bad "cmake --install"; exit 1; }
ok "cmake --install into $P"
VERSION=$("$B/kinsync" version | awk '{print $2}')
MM=${VERSION%.*}

# layout
check "[ -f '$P/include/kinsync.h' ] && [ -f '$P/include/kinsync/version.h' ]" "headers installed"
check "! find '$P/include' -name 'kinsync_msgs.h' -o -name '*_internal.h' | grep -q ." "no internal or generated internal header installed"
for h in "$SRC"/include/kinsync/*.h; do
  n=$(basename "$h")
  grep -q "#include \"kinsync/$n\"" "$P/include/kinsync.h" || bad "kinsync.h does not include kinsync/$n"
  printf '#include <kinsync/%s>\nint main(void) { return 0; }\n' "$n" > "$T/h.c"
  $CC -I"$P/include" -c "$T/h.c" -o "$T/h.o" 2> "$T/h.err" || { bad "kinsync/$n does not compile alone"; cat "$T/h.err"; }
done
ok "every public header compiles alone and is in kinsync.h"
for lib in kinsync kinsync-sim; do
  check "[ -f '$P/lib/lib$lib.a' ]" "lib$lib.a"
  check "[ \"\$(readelf -d '$P/lib/lib$lib.so' | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')\" = 'lib$lib.so.$MM' ]" "lib$lib.so has SONAME lib$lib.so.$MM"
  check "[ -f '$P/lib/lib$lib.so.$VERSION' ] && [ -L '$P/lib/lib$lib.so.$MM' ]" "lib$lib.so.$VERSION and its SONAME link"
  check "[ -f '$P/lib/pkgconfig/$lib.pc' ]" "$lib.pc"
done
check "[ -f '$P/lib/cmake/kinsync/kinsyncConfig.cmake' ] && [ -f '$P/lib/cmake/kinsync/kinsyncConfigVersion.cmake' ]" "CMake package"
check "[ \"\$('$P/bin/kinsync' version)\" = 'kinsync $VERSION' ]" "bin/kinsync version"
cmds=$("$P/bin/kinsync" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF>1 && $1 != "Commands:" {print $1}')
check "[ -n \"$cmds\" ] && [ -f '$P/share/man/man1/kinsync.1' ]" "man page kinsync.1"
for c in $cmds; do
  m="$P/share/man/man1/kinsync-$c.1"
  [ -f "$m" ] && grep -q "^\.TH KINSYNC-$(echo "$c" | tr a-z A-Z) 1" "$m" || bad "man page kinsync-$c.1"
done
ok "a man page per command: $(echo $cmds | wc -w) commands"
check "grep -q -- '--board' '$P/share/man/man1/kinsync-calibrate.1'" "kinsync-calibrate.1 holds calibrate --help"

export PKG_CONFIG_PATH="$P/lib/pkgconfig"
# the core alone
SIMLIBS='kinsync-sim|apriltag|turbojpeg|png|lapacke|ddsc'
core=$(pkg-config --cflags --libs kinsync); core_static=$(pkg-config --static --libs kinsync)
echo "pkg-config kinsync: $core | --static: $core_static"
check "! echo '$core $core_static' | grep -qE '$SIMLIBS'" "pkg-config kinsync names no library of the simulator"
$CC "$SRC/examples/c/k4a_devices.c" $core -Wl,-rpath,"$P/lib" -o "$T/k4a_devices" 2> "$T/cc.err" || { bad "k4a_devices (shared)"; cat "$T/cc.err"; }
check "[ -x '$T/k4a_devices' ] && ! readelf -d '$T/k4a_devices' | grep NEEDED | grep -qE '$SIMLIBS'" "k4a_devices needs no library of the simulator (shared)"
check "[ -x '$T/k4a_devices' ] && ! ldd '$T/k4a_devices' | grep -qE '$SIMLIBS'" "... nor does anything it loads"
static_libs=$(echo "$core_static" | sed 's/-lkinsync\b//')
$CC "$SRC/examples/c/k4a_devices.c" $(pkg-config --cflags kinsync) "$P/lib/libkinsync.a" $static_libs \
  -o "$T/k4a_devices_static" 2> "$T/cc.err" || { bad "k4a_devices links statically without the simulator's libraries"; cat "$T/cc.err"; }
check "[ -x '$T/k4a_devices_static' ] && ! readelf -d '$T/k4a_devices_static' | grep -qE 'libkinsync|$SIMLIBS'" "k4a_devices static: libkinsync.a pulls nothing of the simulator"
for prog in k4a_devices k4a_devices_static; do
  KINSYNC_K4A_LIBRARY="$B/tests/libfake_k4a.so" FAKE_K4A_SCRIPT="000001112912,1.6.110,1.6.79,1.6.14,6109.7.0,-o;000002112912,1.6.110,1.6.79,1.6.14,6109.7.0,i-" "$T/$prog" > "$T/$prog.out" 2>&1
  check "[ $? -eq 0 ] && grep -q 'devices' '$T/$prog.out' && grep -q '^000002112912 depth firmware 1.6.79 sync in connected' '$T/$prog.out'" "$prog lists the devices of the libk4a test double"
done
cat "$T/k4a_devices.out"

# every example through pkg-config
EX="rig_skews record_rig read_recordings fuse_ply"
for ex in $EX; do
  $CC "$SRC/examples/c/$ex.c" $(pkg-config --cflags --libs kinsync-sim) -lm -Wl,-rpath,"$P/lib" -o "$T/pc-$ex" 2> "$T/cc.err" ||
    { bad "$ex builds with pkg-config kinsync-sim"; cat "$T/cc.err"; }
done
# ... and through find_package(kinsync)
cflags=""; [ -n "$SAN" ] && cflags="-DCMAKE_C_FLAGS=$SAN -DCMAKE_EXE_LINKER_FLAGS=$SAN"
if cmake -S "$SRC/examples/c" -B "$T/cm" -DCMAKE_PREFIX_PATH="$P" $cflags > "$T/cm.log" 2>&1 &&
   cmake --build "$T/cm" -j2 >> "$T/cm.log" 2>&1; then ok "examples build with find_package(kinsync)"
else bad "examples build with find_package(kinsync)"; tail -30 "$T/cm.log"; fi
check "[ -x '$T/cm/k4a_devices' ] && ! readelf -d '$T/cm/k4a_devices' | grep NEEDED | grep -qE '$SIMLIBS'" "find_package: k4a_devices (kinsync::kinsync) needs no library of the simulator"

RIG="$SRC/examples/rigs/chain-3.yaml"
for how in pc cm; do
  x() { if [ $how = pc ]; then echo "$T/pc-$1"; else echo "$T/cm/$1"; fi; }
  out="$T/$how"; mkdir -p "$out"
  "$(x rig_skews)" "$RIG" 5 > "$out/skews.txt" 2>&1
  check "[ $? -eq 0 ] && [ \$(grep -cE '^set [0-9]+: [0-9] devices, skew [0-9.]+ us' '$out/skews.txt') -eq 5 ] && [ \$(grep -cE '^set [0-9]+: 3 devices, skew [0-9.]+ us' '$out/skews.txt') -ge 3 ]" "$how: rig_skews prints 5 frame sets of the simulated chain-3"
  "$(x record_rig)" "$SRC/examples/rigs/demo-studio.yaml" "$out/rec" 1.5 > "$out/rec.txt" 2>&1
  check "[ $? -eq 0 ] && [ \$(ls '$out/rec/'*.mkv 2>/dev/null | wc -l) -eq 3 ]" "$how: record_rig records the demo studio (3 .mkv)"
  "$(x read_recordings)" "$out/rec/"*.mkv > "$out/read.txt" 2>&1
  sets=$(sed -n 's/^\([0-9]*\) frame sets from 3 recordings$/\1/p' "$out/read.txt")
  check "[ -n '$sets' ] && [ '$sets' -ge 10 ] && grep -q 'depth 640x576' '$out/read.txt'" "$how: read_recordings reads them as frame sets ($sets)"
done
# a rig calibration of the recorded demo rig, then the fuse example on those recordings
"$P/bin/kinsync" calibrate "$T/pc/rec/"*.mkv --board "$SRC/examples/boards/aprilgrid-6x6.yaml" -o "$T/cal.json" > /dev/null 2>&1
check "[ -f '$T/cal.json' ]" "kinsync calibrate on the recorded demo rig"
for how in pc cm; do
  x=$T/pc-fuse_ply; [ $how = cm ] && x=$T/cm/fuse_ply
  "$x" "$T/cal.json" "$T/$how.ply" "$T/pc/rec/"*.mkv > "$T/$how-fuse.txt" 2>&1
  n=$(sed -n 's/.*: \([0-9]*\) points from 3 devices.*/\1/p' "$T/$how-fuse.txt")
  # (the sensor model: each device keeps only what lies in its depth mode's mask and range, ~80 k points per set)
  check "[ -n '$n' ] && [ '$n' -gt 50000 ] && head -c 300 '$T/$how.ply' | grep -q \"element vertex $n\"" "$how: fuse_ply writes one set to PLY ($n points)"
done
# the README's C program, as shown there
awk '/^## Use the library/{u=1} u&&/^```c$/{c=1;next} c&&/^```$/{exit} c' "$SRC/README.md" > "$T/readme.c"
$CC "$T/readme.c" $(pkg-config --cflags --libs kinsync-sim) -lm -Wl,-rpath,"$P/lib" -o "$T/readme" 2> "$T/cc.err" || cat "$T/cc.err"
(cd "$SRC" && "$T/readme" examples/rigs/chain-3.yaml) > "$T/readme.out" 2>&1
check "[ \$(grep -cE '^set [0-9]: skew [0-9.]+ us' '$T/readme.out') -eq 5 ]" "the README's C program builds and runs as shown"
echo "test_install: fail=$fail"
exit $fail
