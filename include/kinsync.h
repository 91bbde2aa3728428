/* kinsync.h: the whole public API of libkinsync in one include.
 *
 *   #include <kinsync.h>
 *   cc prog.c $(pkg-config --cflags --libs kinsync)          core: rigs, plans, devices (libk4a),
 *                                                             recordings, sessions, sync statistics
 *   cc prog.c $(pkg-config --cflags --libs kinsync-sim)      adds the simulator, boards and board
 *                                                             detection, fusion, multi-host
 * or with CMake: find_package(kinsync) and link kinsync::kinsync or kinsync::sim.
 * docs/library.md says which header belongs to which library, and the rules every handle follows
 * (ownership, threads, names). */
#ifndef KINSYNC_H
#define KINSYNC_H

#include "kinsync/align.h"
#include "kinsync/board.h"
#include "kinsync/calibration.h"
#include "kinsync/device.h"
#include "kinsync/doctor.h"
#include "kinsync/error.h"
#include "kinsync/frameset.h"
#include "kinsync/fuse.h"
#include "kinsync/fuse_sink.h"
#include "kinsync/k4a.h"
#include "kinsync/matcher.h"
#include "kinsync/mkv.h"
#include "kinsync/net.h"
#include "kinsync/plan.h"
#include "kinsync/playback.h"
#include "kinsync/record.h"
#include "kinsync/rig.h"
#include "kinsync/rigcal_sink.h"
#include "kinsync/rigcalib.h"
#include "kinsync/rigrun.h"
#include "kinsync/session.h"
#include "kinsync/sim.h"
#include "kinsync/source.h"
#include "kinsync/syncstats.h"
#include "kinsync/timing.h"
#include "kinsync/version.h"
#include "kinsync/view.h"

#endif
