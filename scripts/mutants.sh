#!/usr/bin/env bash
# Mutation check, run by hand (not in CI): each mutant is one small edit of the product code that
# breaks a capability; the tests named with it must then FAIL. The edits are applied to a scratch
# worktree of HEAD (the working tree is never touched), rebuilt, tested and reverted one at a time.
# Prints one line per mutant: "caught" (the tests failed, as they must) or "SURVIVED" (no test
# noticed: a test is missing), or that the mutant itself is stale: "NOT APPLIED" (its edit matches
# nothing), "NOT BUILT" (the edited code does not compile: -Werror), "NO TESTS" (its regex names no
# test). Exit 1 if any mutant survived or is stale.
#
#   scripts/mutants.sh            every mutant
#   scripts/mutants.sh NAME...    only these (names as listed by: scripts/mutants.sh --list)
#   scripts/mutants.sh --list     the names, each with "NOT APPLIED" if its edit no longer matches the
#                                 code (checked without building; exit 1 if any is stale)
#
# Add a mutant with every capability: name | file | sed expression | ctest -R regex. The sed
# expression uses # as its delimiter and ends with it: the fields are split at the first two |
# and at the last "#|", so the expression and the regex may contain | themselves.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MUTANTS=(
  # fuse --color-scale no longer reaches the MJPEG decoder (colour decoded at full size whatever the flag)
  "fuse-color-scale|src/cli/cmd_fuse.c|s#.color_scale = (int)r->a.color_scale,#.color_scale = 1,#|^test_fuse_cli$"
  # fuse: a point no colour camera saw (grey fallback) is averaged into its voxel's colour again
  "fuse-color-unseen|src/fuse/color.c|s#col\[i\] = ok ? c : 0;#col[i] = ok ? c : 0x01808080u;#|^test_pipeline_colors$"
  # the matcher's default tolerance widened from P/4 to 0.9 P
  "matcher-tolerance|src/session/matcher.c|s#m->cfg.tolerance_us = m->cfg.period_us / 4;#m->cfg.tolerance_us = m->cfg.period_us * 9 / 10;#|^test_matcher$"
  # the EBML size encoder allowed to emit the reserved all-ones size
  "ebml-all-ones|src/mkv/ebml.c|s#size >= ((uint64_t)1 << (7 \* len)) - 1#size > ((uint64_t)1 << (7 * len)) - 1#|^test_mkv$"
  # the joint solver's refinement disabled (only the initial estimate is reported): test_calibrate_oblique
  # calibrates a recorded rig whose initial estimate is 3x further from the truth than the refined one
  "solver-no-refine|src/calib/solver.c|s#for (it = 0; it < o->max_iterations; it++) {#for (it = 0; it < 0; it++) {#|^test_calibrate_oblique$"
  # record: a silent device no longer ends the recording (it waited forever)
  "record-no-stall|src/record/record_run.c|s#opts->stall_ms > 0 ? opts->stall_ms : KS_RECORD_STALL_MS#1 << 30#|^test_rec_faults_sh$"
  # record: gaps in the device timestamps no longer counted as lost captures
  "record-no-gaps|src/record/recorder.c|s#if (k > 1)#if (k > 1 \&\& 0)#|^test_rec_faults_sh$"
  # the MKV reader drops the complete blocks of a partly written last cluster again
  "mkv-drop-partial|src/mkv/mkv_cluster.c|s#if (id != ID_CLUSTER)#if (1)#|^test_mkv_truncate$"
  # seek then next_capture returns half captures again
  "mkv-seek-half|src/mkv/mkv_cluster.c|s#if (!r->has_min)#if (1)#|^test_mkv$"
  # the YAML reader's nesting bound removed (libyaml then runs for hours: the test times out)
  "yaml-no-depth|src/util/yaml.c|s#if (++depth > KS_YAML_MAX_FLOW_DEPTH)#if (++depth < 0)#|^test_rig_parse$"
  # fuse: a voxel's z offsets no longer summed (the records' 16-bit z lane dropped from the vector sum)
  "fuse-sum-z|src/fuse/voxel.c|s#(v4u){1, 1, 1, 1}, 4, 1, 2, 3);#(v4u){1, 1, 1, 1}, 4, 1, 2, 2);#|^test_fuse_merge$"
  # voxel grid, writers' add: the block's change flags gathered into the mask in the wrong bit order (runs opened at wrong points)
  "fuse-run-mask|src/fuse/voxel.c|s#0x0102040810204080ull#0x8040201008040201ull#|^test_fuse_merge$|^test_fuse_color$"
  # voxel grid: a narrow cell's list takes a slot for every record, not only a voxel's first (voxels twice, empty ones)
  "fuse-gather-repeats|src/fuse/voxel.c|s#k += count == 0;#k += count == 0 || 1;#|^test_fuse_merge$"
  # voxel grid: the gather leaves a voxel's sums in the scratch (added to the next cell's voxel there)
  "fuse-gather-clear|src/fuse/voxel.c|s#            s->a\[l\] = (v4u){0, 0, 0, 0};#            (void)0;#|^test_fuse_merge$"
  # voxel grid: a wide cell's gather (the bitmap) skips its last bitmap word
  "fuse-gather-wide|src/fuse/voxel.c|s#for (uint32_t wd = 0; wd < CELL_VOX / 64; wd++) {#for (uint32_t wd = 0; wd < CELL_VOX / 64 - 1; wd++) {#|^test_fuse_merge$"
  # voxel grid, colour: the voxel's mean colour truncated instead of rounded (pipeline's colour path, float)
  "fuse-color-round|src/fuse/voxel.c|s#int32_t c = (int32_t)(gc\[8 \* k + 3\] \& 0xffffu), h = c >> 1;#int32_t c = (int32_t)(gc[8 * k + 3] \& 0xffffu), h = 0;#|^test_fuse_merge$"
  # voxel grid, colour: the pipeline's gather reads the colour sums from the unpaired layout (the pairs ac are where they were summed)
  "fuse-color-paired|src/fuse/voxel.c|s#return gather_list_impl(s, nv, true, true, false);#return gather_list_impl(s, nv, true, false, false);#|^test_fuse_merge$|^test_fuse_color$"
  # voxel grid, colour with normals (summed by the second pass, unpaired): the gather reads the pairs instead
  "fuse-color-normals-layout|src/fuse/voxel.c|s#: gather_list_impl(s, nv, true, false, false);#: gather_list_impl(s, nv, true, true, false);#|^test_fuse_merge$"
  # voxel grid, colour: the output loop reads the devices 8-15 from the wrong bits of the colour lanes
  "fuse-color-devices|src/fuse/voxel.c|s#(ga\[st \* k + 5\] >> 24) << 8#(ga[st * k + 5] >> 23) << 8#|^test_fuse_merge$|^test_fuse_color$"
  # voxel grid, colour: the grey of a voxel no colour pixel saw lost in the vectorized means (pipeline's colour path)
  "fuse-color-grey-mean|src/fuse/voxel.c|s#gp\[k\] = c ? r | g << 8 | b << 16 : 0x808080u;#gp[k] = r | g << 8 | b << 16;#|^test_fuse_merge$|^test_fuse_color$"
  # voxel grid, colour: the same in a cell summed in 64 bits (the double formula)
  "fuse-color-round-wide|src/fuse/voxel.c|s#h = (double)(cc / 2) + 0.5;#h = 0.5;#|^test_fuse_merge$"
  # voxel grid, writers' store (the pipeline): a partition takes the runs of another partition's cells (eight at a time)
  "fuse-writers-filter|src/fuse/voxel.c|s#uint64_t x = w ^ ones \* mine;#uint64_t x = w ^ ones * (mine ^ 1u);#|^test_fuse_color$|^test_fuse_merge$"
  # voxel grid, writers' store: the runs left after the groups of eight taken whatever their partition (voxels twice)
  "fuse-writers-filter-tail|src/fuse/voxel.c|s#if (!filter || src->rpart\[r\] == mine)#if (1)#|^test_fuse_color$|^test_fuse_merge$"
  # voxel grid, blocked output: a cell's voxels written past the end of their block (into the next partition's)
  "fuse-block-split|src/fuse/voxel.c|s#size_t m = nv - k0 < room ? nv - k0 : room;#size_t m = nv - k0;#|^test_fuse_merge$"
  # voxel grid, blocked output: the check that a partition's blocks hold its voxels dropped
  "fuse-block-room|src/fuse/fuse_internal.h|s#if (w->taken == w->nblocks)#if (w->taken == w->nblocks + 1)#|^test_fuse_merge$"
  # fuse: the gaps between the blocks closed with every block counted as holding its partition's first voxels
  "fuse-block-counts|src/fuse/fuse.c|s#size_t done = seen\[p\]++ \* OUT_BLOCK#size_t done = seen[p] * OUT_BLOCK#|^test_fuse_merge$"
  # fuse: a gap between blocks left open (its points lost, others doubled)
  "fuse-close-gaps|src/fuse/fuse.c|s#        copy_points(out, hole, src_end - m, m, color, normals);#        (void)copy_points;#|^test_fuse_merge$"
  # voxel grid, colour path: devices 24-31 put one bit off in the colour lanes (a voxel's device mask wrong)
  "fuse-dev-lanes-high|src/fuse/voxel.c|s#bit = d < 24 ? 24 + (d \& 7) : d - 8;#bit = d < 24 ? 24 + (d \& 7) : d - 7;#|^test_fuse_merge$"
  # voxel grid, colour path: the device bits left in the colour sums (the mean colours wrong)
  "fuse-dev-lanes-mask|src/fuse/voxel.c|s#(int32_t)(gc\[8 \* k\] \& 0xffffffu)#(int32_t)gc[8 * k]#|^test_fuse_merge$|^test_fuse_color$"
  # voxel grid without colour: a cell's devices 16-31 (kept in dev[]) not read back in its gather
  "fuse-dev-count-high|src/fuse/voxel.c|s#: ga\[st \* k\] >> DEV_COUNT_SHIFT | (high ? gd\[k\] : 0);#: ga[st * k] >> DEV_COUNT_SHIFT | (high ? 0 * gd[k] : 0);#|^test_fuse_merge$"
  # voxel grid without colour: the device bits left in the voxel's count (weights wrong)
  "fuse-dev-count-mask|src/fuse/voxel.c|s#cnt = col_lanes ? ga\[st \* k\] : ga\[st \* k\] \& ((1u << DEV_COUNT_SHIFT) - 1);#cnt = ga[st * k];#|^test_fuse_merge$"
  # fuse, phase 2: the cells taken from a partition's back copied in reverse cell order (the output depends on who summed what)
  "fuse-steal-order|src/fuse/fuse.c|s#return x < y ? -1 : x > y;#return x > y ? -1 : x < y;#|^test_fuse_merge$"
  # fuse, phase 2: the cells taken from partitions' backs never copied into the output
  "fuse-steal-copy|src/fuse/fuse.c|s#    qsort(f->order, n, sizeof \*f->order, stolen_cmp);#    qsort(f->order, n, sizeof *f->order, stolen_cmp);\n    n = 0;#|^test_fuse_merge$"
  # fuse, phase 2: the stolen cells' voxels seen by 2+ devices left out of the set's count
  "fuse-steal-shared|src/fuse/fuse.c|s#        f->pout\[c->part\].shared += c->shared;#        (void)0;#|^test_fuse_merge$"
  # fuse, phase 2: no thread takes cells from another partition's back (a partition's cells its thread left are lost)
  "fuse-steal-none|src/fuse/fuse.c|s#while (claim_back(f, q, \&c)) {#while (0 \&\& claim_back(f, q, \&c)) {#|^test_fuse_merge$"
  # the team returns before its threads finish the round
  "team-no-wait|src/util/team.c|s#!spin_int(\&t->done, t->started, t->spin_ns)#!spin_int(\&t->done, 0, t->spin_ns)#|^test_util$"
  # the team's threads miss a round published while they sleep (no wake-up; test_util then hangs until ctest's 300 s timeout)
  "team-no-wake|src/util/team.c|s#^        pthread_cond_broadcast(\&t->round_cv);#        (void)0;#|^test_util$"
  # voxel grid, one partition: a compacted block's records taken one point off (the records in place path)
  "fuse-one-part-compact|src/fuse/voxel.c|s#            p->rec\[k++\] = dst\[i\];#            p->rec[k++] = dst[i ? i - 1 : 0];#|^test_fuse_merge$"
  # voxel grid, one partition: a cell change at the first point of a block is not seen (runs merge across cells)
  "fuse-one-part-change|src/fuse/voxel.c|s#            change\[i\] = cell\[i + 1\] != cell\[i\];#            change[i] = cell[i + 1] != cell[i] \&\& i != 0;#|^test_fuse_merge$"
  # scaled MJPEG decoder: an odd frequency's half-block mean taken without its sign (the box means wrong)
  "jpeg-weights-sign|src/fuse/jpeg_lowres.c|s#? 0.0 : sum / scale;#? 0.0 : fabs(sum) / scale;#|^test_jpeg_lowres$"
  # scaled MJPEG decoder: a pair read past a block's coefficient 63 (the next block's DC taken as its second symbol)
  "jpeg-pair-last|src/fuse/jpeg_lowres.c|s#bool last = k >= 63;#bool last = k >= 64;#|^test_jpeg_lowres$"
  # scaled MJPEG decoder: the DC predictions not reset at a restart marker
  "jpeg-restart-pred|src/fuse/jpeg_lowres.c|s#                    cs\[k\].pred = 0;#                    (void)0;#|^test_jpeg_lowres$"
  # scaled MJPEG decoder: where an interval's data ends is not checked (cut frames decoded as whole)
  "jpeg-interval-end|src/fuse/jpeg_lowres.c|s#    return pos <= e \&\& pos + 7 >= e;#    return (void)pos, (void)e, true;#|^test_jpeg_lowres$"
  # scaled MJPEG decoder: a stuffed 0xFF 0x00 dropped instead of read as 0xFF
  "jpeg-unstuff|src/fuse/jpeg_lowres.c|s#            \*o++ = 0xFF;#            (void)0;#|^test_jpeg_lowres$"
  # scaled MJPEG decoder: half-width chroma read as if full width
  "jpeg-chroma-half|src/fuse/jpeg_lowres.c|s#color_row(src\[0\], src\[1\], src\[2\], sw, cs\[1\].h < hmax, o);#color_row(src[0], src[1], src[2], sw / 2, false, o);#|^test_jpeg_lowres$"
  # scaled MJPEG decoder: a frame's Huffman tables kept from the frame before whatever its DHT says
  "jpeg-table-cache|src/fuse/jpeg_lowres.c|s#if (h->defined \&\& h->nspec == nspec \&\& !memcmp(h->spec, spec, (size_t)nspec))#if (h->defined)#|^test_jpeg_lowres$"
  # scaled MJPEG decoder: Huffman tables kept from an earlier frame serve a frame that has none
  "jpeg-tables-per-frame|src/fuse/jpeg_lowres.c|s#!(has_dc >> cs\[i\].td \& 1) || !(has_ac >> cs\[i\].ta \& 1)#!j->dc[cs[i].td].defined || !j->ac[cs[i].ta].defined#|^test_jpeg_lowres$"
  # calibrate DIR: the frame-set reader drops the depth images (no depth cross-check, not as over the recordings)
  "frameset-no-depth|src/record/frameset_dir.c|s#if (s->img\[i\]\[t\].file\[0\])#if (s->img[i][t].file[0] \&\& t != 1)#|^test_pipeline_cli_sh$"
  # fuse: the colour lookup returns the uncoloured grey (the demo's cloud all 128,128,128 again)
  "fuse-color-grey|src/fuse/fuse.c|s#have_color ? \&f->img\[d\] : NULL#have_color \&\& 0 ? \&f->img[d] : NULL#|^test_pipeline_colors$"
  # fuse: colour and depth paired with a key shifted by half a period (no colour ever pairs)
  "fuse-pairing-key|src/fuse/fuse_sink.c|s#return fabs(c.key_us - d.key_us) <= tol;#return fabs(c.key_us - d.key_us - cfg->period_us / 2) <= tol;#|^test_pipeline_colors$"
  # fuse: every device's points coloured through device 0's colour camera (colour from the wrong pixel)
  "fuse-color-pixel|src/fuse/fuse.c|s#ks_points_colorize_packed(f->x + c, f->y + c, f->z + c, n, \&fd->rig_to_color#ks_points_colorize_packed(f->x + c, f->y + c, f->z + c, n, \&f->dev[0].rig_to_color#|^test_pipeline_colors$"
  # lens-table cache: the checksum (util/cachefile.h's since version 3) covers the x plane only (a flipped y ray is used)
  "table-cache-x-only|src/fuse/table_cache.c|s#    return ks_cache_checksum(pl, 2);#    return ks_cache_checksum(pl, 1);#|^test_fuse_points$"
  # the cache files' checksum reads one lane of every sixteen 4-byte words (a flipped lens-table ray in the others is used)
  "cachefile-one-lane|src/util/cachefile.c|s#                a\[l\] += w;#                a[l] += l ? 0 : w;#|^test_fuse_points|test_cachefile$"
  # lens-table cache: a table read from the cache is no longer the file's mapping (copied or leaked)
  "table-cache-mapped|src/fuse/table_cache.c|s#(float \*)x, (float \*)y, valid, (void \*)m, size}#(float *)x, (float *)y, valid, NULL, size}#|^test_fuse_points$"
  # the lens-table cache written without its y plane (through the shared writer): never read back
  "table-cache-store|src/fuse/table_cache.c|s#ks_cache_write_parts(dir, path, parts, 3)#ks_cache_write_parts(dir, path, parts, 2)#|^test_fuse_points$"
  # lossless session: start-up reads the full queue depth ahead again (~14 frames per device before the first set)
  "session-readahead-full|src/session/session.c|s#    return s->warm ? d->q_max : 1;#    return d->q_max;#|^test_session_sim$"
  # lossless session: the queues never deepen after start-up
  "session-never-deepen|src/session/session.c|s#        s->warm = true; /\* start-up is over#        s->warm = false; /* start-up is over#|^test_session_sim$"
  # lossless session: a run without any complete set stays one frame deep for good (no deepening after 8 sets)
  "session-warm-after-sets|src/session/session.c|s#    if (out->set.complete || s->sets + 1 >= KS_WARM_AFTER_SETS)#    if (out->set.complete)#|^test_session_fake$"
  # session open: the laser check asks the simulator about every pair again, not only pairs in different groups
  "session-laser-all-pairs|src/session/session.c|s#                if (a == b || su.groups\[a\] == su.groups\[b\])#                if (a == b)#|^test_session_sim$"
  # big buffers (util/bigmem.c): pages no longer populated when made (each faults in on first write again)
  "bigmem-no-populate|src/util/bigmem.c|s#        (void)madvise((void \*)a, e - a, MADV_POPULATE_WRITE);#        (void)e;#|^test_util$"
  # colouring (fuse/color.c): a point behind the colour camera is coloured from its mirror image
  "color-behind|src/fuse/color.c|s#int ok = __builtin_isgreater(qz, 0.0f) \& #int ok = #|^test_fuse_color$"
  # a point outside the lens model's metric radius is coloured (the polynomial folds it back in)
  "color-metric-radius|src/fuse/color.c|s#__builtin_islessequal(rs, mr2)#__builtin_islessequal(rs, mr2 * 4.0f)#|^test_fuse_color$"
  # the sampled pixel is truncated, not rounded (half the points take a neighbour's colour)
  "color-rounding|src/fuse/color.c|s#color->cx + 0.5) \* s#color->cx) * s#|^test_fuse_color$"
  # a point off the image takes red 0 (the packed "no colour") instead of the fallback
  "color-fallback|src/fuse/color.c|s#o\[0\] = c ? (uint8_t)c : fallback\[0\];#o[0] = (uint8_t)c;#|^test_fuse_color$"
  # Brown-Conrady's tangential cross term with Rational 6KT's factor (1 instead of 2): hundredths of a pixel off
  "color-tangential|src/fuse/color.c|s#cp.cp1 = (float)(c \* color->p1)#cp.cp1 = (float)(color->p1)#|^test_fuse_color$"
  # every point marked seen (unseen points would add grey to their voxel)
  "color-seen|src/fuse/color.c|s#col\[i\] = ok ? c : 0;#col[i] = c;#|^test_fuse_color$"
  # with colour, the decoding tasks pass over every other device (their images are never decoded:
  # their points stay grey, or keep the previous set's colours)
  "fuse-color-device-share|src/fuse/fuse.c|s#f->have_img\[d\] = f->in\[d\].depth \&\& color_image#f->have_img[d] = d % 2 == 0 \&\& f->in[d].depth \&\& color_image#|^test_fuse_color$"
  # with colour, a chunk no longer waits for its device's image (decoded by a task on another thread:
  # its points take the previous set's image or none)
  "fuse-color-wait|src/fuse/fuse.c|s#    if (atomic_load_explicit(\&f->ready\[d\], memory_order_acquire))#    if (1)#|^test_fuse_color$"
  # with colour, the devices' "image ready" flags not cleared between sets (a chunk of the next set
  # takes the image being decoded)
  "fuse-color-ready-reset|src/fuse/fuse.c|s#atomic_store_explicit(\&f->ready\[d\], false, memory_order_relaxed);#(void)0;#|^test_fuse_color$"
  # view: the cloud no longer coloured from the colour cameras
  "view-cloud-palette|src/view/sink.c|s#bool camera_color = !k->opt.device_colors \&\& #bool camera_color = 0 \&\& #|^test_view_http_sh$"
  # view: a due set whose every capture has a newer one is previewed anyway (the loop stays behind)
  "view-stale-superseded|src/view/sink.c|s#        if (superseded) {#        if (0) {#|^test_view_sink$"
  # issue 18: the view's sink encodes previews while no page or API client is attached
  "view-unwatched-encodes|src/view/sink.c|s#if (!always \&\& !ks_view_watched(k->v)) {#if (0) {#|^test_view_sink$"
  # issue 18: an open event stream no longer counts as a watcher (the page stops getting previews 3 s after its last fetch)
  "view-sse-watcher|src/view/server.c|s#if (atomic_load(\&v->watchers) > 0)#if (atomic_load(\&v->watchers) > 99)#|^test_view_sink$"
  # issue 18: the sink decodes MJPEG colour at 1/4 again instead of straight to thumbnail size (1/8)
  "view-color-denom|src/view/sink.c|s#ks_view_color_denom(im->width, k->opt.preview_width)#4#|^test_view_sink$"
  # issue 18: MJPEG colour decoded for every previewed set again (not only for the sets with a cloud)
  "view-color-decode-always|src/view/sink.c|s#if (!pass || k->want_ci\[d\]) {#if (1) {#|^test_view_sink$"
  # issue 18: MJPEG colour re-encoded into a thumbnail again instead of served as the capture's JPEG
  "view-color-passthrough|src/view/sink.c|s#bool pass = cim \&\& cim->format == KS_FORMAT_MJPG#bool pass = 0 \&\& cim->format == KS_FORMAT_MJPG#|^test_view_sink$"
  # issue 18: a point cloud for every previewed set again (not clouds_per_second of them)
  "view-cloud-rate|src/view/sink.c|s#k->cloud_credit += k->opt.clouds_per_second / k->opt.previews_per_second;#k->cloud_credit += 1;#|^test_view_sink$"
  # issue 18: IR previews encoded as three-channel JPEGs again
  "view-ir-grey|src/view/preview.c|s#bool grey = img->format == KS_FORMAT_IR16;#bool grey = false;#|^test_view_(preview|sink)$"
  # issue 18: a due set is previewed even when the loop is behind (every capture already has a newer one)
  "view-stale-set|src/view/sink.c|s#bool superseded = set->set.present_mask != 0;#bool superseded = false;#|^test_view_sink$"
  # issue 18: the sink's helper thread does nothing (the odd devices get no previews)
  "view-helper-idle|src/view/sink.c|s#preview_devices(k, k->henc, k->hcaps, k->hci, k->hhave, 1, 2, \&r);#memset(\&r, 0, sizeof r);#|^test_view_sink$"
  # issue 18: the view's sink threads no longer below the capture path (they compete with the capture threads at their priority)
  "view-nice|src/view/view_internal.h|s#define KS_VIEW_NICE 10#define KS_VIEW_NICE 0#|^test_view_sink$"
  # issue 18: libmicrohttpd's threads started at the caller's priority again (not from a lowered thread)
  "view-mhd-nice|src/view/server.c|s#ds->nice = ks_view_thread_lower(NULL);#ds->nice = 0;#|^test_view_sink$"
  # issue 18: the cloud's unprojection tables built in ks_view_sink_create again (in the session loop, right after the start)
  "view-tables-in-create|src/view/sink.c|s#            k->have_cal\[d\] = true;#            k->have_cal[d] = true; k->have_table[d] = ks_unproject_table_build(\&cal.depth, \&k->table[d], NULL) == KS_OK;#|^test_view_sink$"
  # issue 18: the depth colour table indexed wrong (half the span)
  "view-depth-lut|src/view/preview.c|s#(DEPTH_LUT - 1) / span)#(DEPTH_LUT - 1) / span / 2)#|^test_view_preview$"
  # an unwritable verify --report no longer fails the run (the error is printed, the exit status is 0)
  "verify-report-rc|src/cli/cmd_verify.c|s#report_rc = ks_cli_fail(\"verify\", \&rerr, KS_CLI_RUN);#(void)ks_cli_fail(\"verify\", \&rerr, KS_CLI_RUN);#|^test_cli_exit_sh$"
  # issue 15: a cable in the wrong jack (Sync Out to Sync Out) no longer named by the jack check
  "jacks-wrong-jack|src/session/session.c|s#if (j\[b\].sync_out \&\& !rig_declares_cable(\&s->rig, cb->to, false))#if (0)#|^test_verify_jacks_sh$"
  # issue 15: a cable at a device with unknown jack detection counted as checked (PASS, no SKIP)
  "jacks-unknown-pass|src/session/session.c|s#if ((a >= 0 \&\& !j\[a\].supported) || (b >= 0 \&\& !j\[b\].supported)) {#if (0) {#|^test_verify_jacks_sh$"
  # issue 15: the simulator's wrong-jack cable still carries the pulses
  "sim-wrong-jack-pulses|src/device/sim/sim_world.c|s#w->cable_unplugged\[c\] || w->cable_wrong_jack\[c\] || cb->to < 0#w->cable_unplugged[c] || cb->to < 0#|^test_sim_faults$"
  # verify blames the sync cable for a device's outage even when a device behind it kept capturing
  "verify-cable-downstream|src/session/syncstats.c|s#if (!all_behind)#if (0 \&\& !all_behind)#|^test_verify_faults_sh$"
  # a lossless session feeds the matcher while its consumer lags: finished sets overflow and are lost
  "session-lossless-feed|src/session/session.c|s#if (s->lossless \&\& ks_matcher_ready(s->matcher) >= (s->warm ? KS_LOSSLESS_READY : 1))#if (0)#|^test_session_sim$"
  # a recording that ended long before the others is excused like the take's end (verify over it PASSes)
  "session-take-end|src/session/session.c|s#!(s->d\[i\].ended \&\& out->set.key_us - s->d\[i\].last_key <= 2.5 \* s->mcfg.period_us)#!s->d[i].ended#|^test_pipeline_cli_sh$"
  # align's depth offset adds the convention's part instead of removing it
  "align-ts-residual|src/align/align.c|s#(double)fr->color_ts_us - dd -#(double)fr->color_ts_us - dd +#|^test_rec_align$"
  # verify's verdict no longer follows the checks (a FAIL check with result PASS, exit 0)
  "verify-one-verdict|src/cli/cmd_verify.c|s#bool passed = ks_syncstats_passed(q);#bool passed = true;#|^test_verify_faults_sh$"
  # align: the partial sets of the ragged start and stop no longer trimmed (record && align fails again)
  "align-no-trim|src/align/align.c|s#    if (!(opts \&\& opts->keep_edge_sets))#    if (0)#|^test_rec_align$"
  # align: a take with no complete set (frameless files) exits 0 again
  "align-empty-ok|src/cli/cmd_align.c|s#r->complete_sets == r->set_count \&\& r->complete_sets > 0#r->complete_sets == r->set_count#|^test_rec_align$"
  # recordings of two different rigs are paired again (calibrate then blames the board)
  "rigs-mixed|src/device/playback/playback_rig.c|s#a->rig_name\[0\] \&\& b->rig_name\[0\] \&\& strcmp#0 \&\& strcmp#|^test_calibrate_usage_sh$"
  # calibrate of one recording runs (and printed nan) instead of saying what it needs
  "calibrate-one|src/cli/cmd_calibrate.c|s#if (!dir \&\& nin == 1)#if (0)#|^test_calibrate_usage_sh$"
  # a camera that is off keeps its extrinsics (the SDK zeroes them)
  "camera-off-extrinsics|src/calib/calibration.c|s#memset(\&rcol.rt, 0, sizeof rcol.rt)#(void)0#|^test_camera_model$"
  # a coordinator whose commands go unanswered no longer says the secret may differ
  "secret-hint|src/net/coordinator.c|s#and with the same --secret-file#and up#|^(test_net_loopback|test_net_secret_sh)$"
  # the agent (and coordinator) no longer warn about a secret file other users can read
  "secret-mode|src/cli/net_cli.c|s#(sb.st_mode \& 077)#(sb.st_mode \& 0)#|^(test_net_secret_sh|test_cli_exit_sh)$"
  # issue 20: an IMU sample read from a recording has temperature 0 again (the SDK gives NaN)
  "mkv-imu-temperature|src/mkv/mkv_internal.h|s#    s->temperature_c = NAN; /\* not recorded#    s->temperature_c = 0; /* not recorded#|^test_mkv$"
  # issue 19: the reader's image buffers no longer go back to its pool (a fresh malloc and page faults per frame)
  "mkv-pool-off|src/util/image_pool.c|s#if (p->refs > 1 \&\& p->nfree < p->max_free#if (0 \&\& p->nfree < p->max_free#|^test_mkv_decode$"
  # issue 19: the reader decodes every track whatever ks_mkv_reader_set_decode said
  "mkv-decode-all|src/mkv/mkv_cluster.c|s#    if (!(r->decode_mask \& (1u << t->kind))) {#    if (0) {#|^(test_mkv_decode|test_rec_session|test_rec_playback)$"
  # issue 19: frames of tracks not decoded are dropped from captures instead of coming header-only (colour timestamps lost)
  "mkv-no-header-only|src/mkv/mkv_cluster.c|s#if (it.kind <= KS_MKV_IR \&\& !it.image \&\& !(r->decode_mask \& (1u << it.kind))) {#if (0) {#|^(test_mkv_decode|test_rec_session|test_rec_playback)$"
  # issue 19: the 8-byte swap loses the high bytes
  "mkv-swap-mask|src/mkv/mkv_internal.h|s#v = (v \& lo) << 8 | (v >> 8 \& lo);#v = (v \& lo) << 8 | (v \& lo) >> 8;#|^(test_mkv_decode|test_mkv)$"
  # issue 19: the swap's 2-byte tail (sizes not a multiple of 8) left unswapped
  "mkv-swap-tail|src/mkv/mkv_internal.h|s#for (; i + 2 <= n; i += 2) {#for (; i + 2 <= n \&\& 0; i += 2) {#|^test_mkv_decode$"
  # issue 19: the session no longer tells the devices which streams its sinks read
  "session-streams|src/session/session.c|s#            ks_device_set_streams(s->d\[i\].dev, streams);#            (void)streams;#|^test_rec_session$"
  # issue 19: the fuse sink forgets it reads colour with --color (recordings would skip decoding it)
  "fuse-streams-color|src/fuse/fuse_sink.c|s#return KS_STREAM_DEPTH | (opt \&\& opt->color ? KS_STREAM_COLOR : 0u);#return KS_STREAM_DEPTH;#|^test_fuse_cli$"
  # issue 19: a device that ended is marked gone while frames of it are still queued (lossless feed stops at 4 sets waiting): its last sets come without it
  "session-gone-early|src/session/session.c|s#if (d->dead \&\& !d->q_count \&\& !d->gone_marked) {#if (d->dead \&\& !d->gone_marked) {#|^test_pipeline_same$"
  # issue 19: every frame's bytes read with its cluster again (colour and IR read though only depth is decoded)
  "mkv-read-all|src/mkv/mkv_cluster.c|s#    return idx >= 0 \&\& r->info.tracks\[idx\].kind <= KS_MKV_IR \&\& r->info.tracks\[idx\].type == 1;#    return idx < -1;#|^test_mkv_decode$"
  # issue 20: repair of a .part without a complete block writes a file (the SDK refuses it) and exits 0
  "repair-empty-ok|src/mkv/mkv_repair.c|s#    if (!nk) {#    if (0) {#|^(test_mkv_truncate|test_cli_exit_sh)$"
  # issue 20: unreadable input (a directory, garbage YAML) exits 1 again instead of 2 (docs/cli.md)
  "cli-input-exit2|src/cli/main.c|s#case KS_CLI_INPUT: return st == KS_ENOTFOUND || st == KS_EIO || st == KS_EPARSE ? KS_EXIT_USAGE : KS_EXIT_FAIL;#case KS_CLI_INPUT: return KS_EXIT_FAIL;#|^test_cli_exit_sh$"
  # issue 19: the simulator builds a camera's static view (rays, render) again on every request
  "sim-view-rebuilt|src/device/sim/sim_render.c|s#while (s \&\& !(s->depth_mode == dm \&\& s->color_res == cr))#while (s \&\& !(s->depth_mode == dm \&\& s->color_res == cr \&\& 0))#|^test_sim_checksums$"
  # issue 19: the vectorized unprojection stops its Newton steps earlier than ks_unproject_ray (other doubles)
  "unproject-row-steps|src/calib/camera_model.c|s#ks_vl step = better \& ~(e < 1e-24)#ks_vl step = better \& ~(e < 1e-12)#|^(test_camera_model|test_sim_checksums)$"
  # issue 19: the simulator's box culling sphere smaller than the box (boxes lose their corners)
  "sim-box-cull|src/device/sim/sim_render.c|s#double rad = sqrt(half2) + 1.0;#double rad = sqrt(half2) * 0.9;#|^test_sim_checksums$"
  # issue 19: the simulator's test for a wall behind the camera inverted (walls vanish from the images)
  "sim-wall-behind|src/device/sim/sim_render.c|s#if (num == 0 || (num > 0) != (d\[axis\] > 0))#if (num == 0 || (num > 0) == (d[axis] > 0))#|^test_sim_checksums$"
  # issue 19: the simulator renders the colour a session does not read (ks_device_set_streams ignored)
  "sim-streams-ignored|src/device/sim/sim_world.c|s#    d->streams = streams;#    d->streams = 0;#|^test_sim_checksums$"
  # issue 19: the simulator's view cache never read (every start-up ray-casts the views again)
  "sim-view-cache-unused|src/device/sim/sim_render.c|s#    if (cache \&\& view_cache_load(dir, vc, \&k)) {#    if (cache \&\& 0 \&\& view_cache_load(dir, vc, \&k)) {#|^test_sim_view_cache$"
  # issue 19: a view cache file passing its checksum is used without the spot check (a forged or stale view is served)
  "sim-view-cache-spot-check|src/device/sim/sim_render.c|s#k->n, pl, np) \&\& view_spot_check(vc);#k->n, pl, np) \&\& (view_spot_check(vc) || 1);#|^test_sim_view_cache$"
  # issue 19: the view cache's key without the camera's rotation (a turned camera would get the old view's file)
  "sim-view-cache-key-rotation|src/device/sim/sim_render.c|s#    key_f64s(k, c->R, 9);#    (void)c->R;#|^test_sim_view_cache$"
  # issue 19: kinsync fuse no longer gives the simulator its view cache (every start-up ray-casts the views)
  "fuse-no-view-cache|src/cli/cmd_fuse.c|s#r->a.fast, cached ? cache_dir : NULL,#r->a.fast, NULL,#|^test_fuse_live_sh$"
  # issue 19: the simulator's fresh frame buffers one mapping of 4 KiB pages each again (no slab on 2 MB pages)
  "sim-no-slab|src/device/sim/sim_world.c|s#    double best = 0.6;#    double best = 2.0;#|^test_sim_pool$"
  # issue 19: the cache files' checksum without its position sums (a word moved within a lane goes unseen)
  "cachefile-position|src/util/cachefile.c|s#                c\[l\] += a\[l\];#                c[l] += 0;#|^test_cachefile$"
  # issue 19: a cache file's padding no longer checked (a damaged padding byte is accepted)
  "cachefile-padding|src/util/cachefile.c|s#            ok = pad\[i\] == 0;#            ok = ok \&\& pad[i] != 1;#|^test_cachefile$"
  # cache size cap: eviction deletes the most recently used files first (the oldest kept)
  "cache-evict-newest|src/util/cachefile.c|s#return before(\&a->mtime, \&b->mtime) ? -1 : 1;#return before(\&a->mtime, \&b->mtime) ? 1 : -1;#|^test_cache_evict$"
  # cache size cap: never applied (the directory grows without bound again)
  "cache-evict-no-cap|src/util/cachefile.c|s#if (complete \&\& total > max_bytes) {#if (complete \&\& total > max_bytes \&\& 0) {#|^test_cache_evict$|^test_sim_view_cache$"
  # cache size cap: a file larger than the cap written anyway
  "cache-write-over-cap|src/util/cachefile.c|s#count < 0 || bytes > cap || !make_dir(dir)#count < 0 || !make_dir(dir)#|^test_cache_evict$"
  # cache size cap: a write's eviction no longer spares the file just written and newer ones (another writer's)
  "cache-evict-keep|src/util/cachefile.c|s#        if (keep) {#        if (keep \&\& 0) {#|^test_cache_evict$"
  # cache size cap: files of the same time as the one just written taken for older
  "cache-evict-same-time|src/util/cachefile.c|s#while (stop > 0 \&\& !before(#while (stop > 0 \&\& before(#|^test_cache_evict$"
  # cache size cap: files that are not the cache's (any name) counted and deleted
  "cache-evict-foreign|src/util/cachefile.c|s#int kind = ks_cache_name_kind(de->d_name);#int kind = ks_cache_name_kind(de->d_name) ? ks_cache_name_kind(de->d_name) : 1;#|^test_cache_evict$"
  # cache size cap: temporaries being written deleted (a live writer's file vanishes)
  "cache-evict-live-tmp|src/util/cachefile.c|s#if (now.tv_sec - sb.st_mtim.tv_sec > KS_CACHE_STALE_TMP_S)#if (1)#|^test_cache_evict$"
  # cache size cap: a view read from the cache no longer counts as used (its time not refreshed)
  "cache-hit-no-touch|src/util/cachefile.c|s#(void)futimens(fd, NULL);#(void)fd;#|^test_cache_evict$|^test_sim_view_cache$"
  # cache size cap: a lens table read from the cache no longer counts as used
  "table-cache-hit-no-touch|src/fuse/table_cache.c|s#ks_cache_touch(path); /\*#(void)path; /*#|^test_fuse_points$"
  # KINSYNC_CACHE_MAX_MB=0 no longer turns the lens-table cache off
  "table-cache-off|src/fuse/table_cache.c|s#depth->height > 8192 || cap == 0)#depth->height > 8192)#|^test_fuse_points$"
  # fuse: ks_fuse_points hands out the per-thread chunk buffers when the points are not kept
  "fuse-points-not-kept|src/fuse/fuse.c|s#    if (!f->keep) {#    if (0) {#|^test_fuse_merge$"
  # fuse: normals no longer keep the organized points (their neighbour rows read from the chunk buffers)
  "fuse-normals-keep|src/fuse/fuse.c|s#f->keep = f->opt.keep_points || f->opt.normals;#f->keep = f->opt.keep_points;#|^test_fuse_merge$"
  # Python: FuseOptions loses the header's last field again (the library read 8 bytes past Python's struct)
  "py-fuse-options-layout|python/kinsync/_lib.py|s#(\"keep_points\", c_bool)\]#]#|^test_python_sh$"
)
# split "name|file|expr|tests" into the four fields (see above)
split() {
  local rest
  name=${1%%|*}
  rest=${1#*|}
  file=${rest%%|*}
  rest=${rest#*|}
  expr="${rest%\#|*}#"
  tests=${rest##*\#|}
}
# true when the mutant's edit changes the current $ROOT/$file (without building anything)
applies() {
  [ -f "$ROOT/$file" ] && ! sed "$expr" "$ROOT/$file" 2>/dev/null | cmp -s - "$ROOT/$file" &&
    sed "$expr" "$ROOT/$file" >/dev/null 2>&1
}
if [ "${1:-}" = "--list" ]; then
  stale=0
  for m in "${MUTANTS[@]}"; do
    split "$m"
    if applies; then echo "$name"; else echo "$name NOT APPLIED: the edit no longer matches $file"; stale=1; fi
  done
  exit $stale
fi
WT=$(mktemp -d /tmp/ks-mutants.XXXXXX)
git worktree add --detach "$WT" HEAD >/dev/null 2>&1 || { echo "cannot create a scratch worktree"; exit 2; }
trap 'git -C "$ROOT" worktree remove --force "$WT" >/dev/null 2>&1; rm -rf "$WT"' EXIT
cmake -S "$WT" -B "$WT/build" -DKS_WERROR=ON >/dev/null || exit 2
survived=0
for m in "${MUTANTS[@]}"; do
  split "$m"
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
  cp "$WT/$file" "$WT/$file.orig"
  sed -i "$expr" "$WT/$file"
  if cmp -s "$WT/$file" "$WT/$file.orig"; then
    echo "NOT APPLIED $name: the edit no longer matches $file (update the mutant)"
    survived=1
    mv "$WT/$file.orig" "$WT/$file"
    continue
  fi
  # build only what the mutant's tests run: their executables, the command (C tests run it too)
  # and what the shell tests use beside it (every test executable relinks the static library)
  targets=(kinsync_cli)
  for t in $(cd "$WT/build" && ctest -N -R "$tests" | sed -n 's/^ *Test *#[0-9]*: //p'); do
    case $t in
      *_sh) targets+=(ks_fake_k4a test_fuse_export) ;;
      *) targets+=("$t") ;;
    esac
  done
  if [ ${#targets[@]} -eq 1 ]; then
    echo "NO TESTS  $name: no test matches $tests (update the mutant)"
    survived=1
  elif ! cmake --build "$WT/build" -j2 --target "${targets[@]}" >"$WT/build.log" 2>&1; then
    echo "NOT BUILT $name: the mutated code does not compile, so no test ran (rewrite the mutant); its first error:"
    sed -n '/error:/{p;q}' "$WT/build.log"
    survived=1
  elif (cd "$WT/build" && ctest -R "$tests" --timeout 120 >"$WT/ctest.log" 2>&1); then
    echo "SURVIVED  $name: $tests still pass with: $expr in $file"
    survived=1
  else
    echo "caught    $name ($(grep -cE '^ *[0-9]+/[0-9]+ +Test +#[0-9]+: .*\*\*\*' "$WT/ctest.log") of $(grep -cE '^ *[0-9]+/[0-9]+ +Test +#' "$WT/ctest.log") failing: $tests)"
  fi
  mv "$WT/$file.orig" "$WT/$file"
  touch "$WT/$file"
done
exit $survived
