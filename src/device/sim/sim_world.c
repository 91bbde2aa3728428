/* device/sim/sim_world.c: the simulated world in virtual time and the simulator's backend ops.
 *
 * Design: one discrete-event world per backend behind one mutex. Nothing runs in the background:
 * a caller that waits for data (get_capture, get_imu_sample, ks_sim_advance) processes events in
 * time order until its data is there or its virtual deadline passed, so the world is deterministic
 * for a given seed and call sequence. Events: a master's (or standalone device's) own frame tick,
 * an external trigger pulse, a sync pulse reaching a Sync In, a capture's sync instant, a frame
 * reaching its host, fault start/end, host stall end. Images are rendered outside the lock by
 * sim_render.c when the host takes the frame.
 *
 * Timing model (docs/simulator.md): the colour exposure is centred on the capture's sync instant S
 * (the tick for a master, pulse arrival + subordinate delay for a subordinate), the depth laser
 * window is centred on S + depth delay (both delays as the firmware applies them, 90 kHz ticks).
 * A subordinate's clock is zeroed by the first pulse it sees after it starts and then runs at the
 * rate of its source (locked to the sync signal); masters and standalone devices run on their own
 * oscillator (offset, drift, jitter). */
#define _GNU_SOURCE
#include <math.h>
#include <sys/mman.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device/sim/sim_internal.h"
#include "util/monotime.h"

enum { EV_TICK, EV_TRIGGER, EV_PULSE, EV_CAPTURE, EV_DELIVER, EV_FAULT, EV_STALL_END };

struct sim_event {
    uint64_t t;
    uint64_t seq;
    int type;
    int dev;
    int aux;
    uint64_t gen;
    int64_t idx;
    double rate;
    uint64_t t_true;   /* EV_CAPTURE: the true sync instant (may precede t by a negative jitter draw) */
    sim_frame *frame;
};

/* ---- random numbers (splitmix64: tiny, seedable, good enough for noise) ---- */

uint64_t sim_rand_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rand_unit(uint64_t *s) /* [0, 1) */
{
    return (double)(sim_rand_u64(s) >> 11) * (1.0 / 9007199254740992.0);
}

double sim_rand_normal(uint64_t *s)
{
    double u1 = rand_unit(s), u2 = rand_unit(s);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- shared buffers ---- */

/* Large per-frame buffers are recycled: a fresh multi-megabyte allocation is a fresh mmap whose pages
 * all fault in (costly, especially in a VM), and every frame needs a few of them. Blocks of 64 KiB and
 * more go back to a small pool when released (bounded: 256 blocks, 256 MiB) and are handed out again
 * for the same size by sim_buf_new_uninit. 256 blocks: a lossless session over 9 devices keeps up to
 * ~12 captures per device in flight (host queue and matcher), depth and IR each a block; with 48 the
 * rest were unmapped and faulted in again for every set. A fresh block is mapped with its pages
 * populated at once (one system call instead of a page fault per 4 KiB; a fault costs microseconds
 * in a VM, and a start-up maps ~100 MB of frames before the pool has any); every block of
 * SIM_POOL_MIN or more is such a mapping (block_alloc / block_free), smaller ones use malloc.
 * Populated 4 KiB pages still cost ~6 us each on the development VM when first written (the
 * hypervisor's page tables: a fresh 720 KB depth frame ~1.1 ms), 2 MB pages almost nothing; so a
 * fresh block comes in a slab of 2, 4 or 8 blocks of the same size on 2 MB pages (block_slab: the
 * count and stride that fill the pages best, used only when they fill them to 60 % or more; 8 NFOV
 * unbinned depth frames of 720 KB at a 768 KB stride in 6 MB), the others go to the pool. Every
 * block of a size has the same stride, so a block is unmapped on its own, its stride's bytes. */
#define SIM_POOL_BLOCKS 256
#define SIM_POOL_MIN ((size_t)64 << 10)
#define SIM_POOL_MAX_BYTES ((size_t)256 << 20)
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    size_t size;
    uint8_t *data;
} pool[SIM_POOL_BLOCKS];
static int pool_n;
static size_t pool_bytes;

#define SIM_HUGE ((size_t)2 << 20)
#define SIM_PAGE ((size_t)4096)

/* The slab for blocks of `size` (>= SIM_POOL_MIN): *count blocks *stride bytes apart filling
 * *count x *stride bytes of 2 MB pages exactly; *count 1 and *stride the size in whole pages (a
 * plain mapping) when no slab fills its pages to 60 %. The same for every block of a size. */
static void block_slab(size_t size, int *count, size_t *stride)
{
    size_t pages = (size + SIM_PAGE - 1) / SIM_PAGE * SIM_PAGE;
    *count = 1;
    *stride = pages;
    double best = 0.6;
    for (int k = 1; k <= 8; k *= 2) { /* 2 MB is a multiple of 8 pages: the stride stays whole pages */
        size_t span = (pages * (size_t)k + SIM_HUGE - 1) / SIM_HUGE * SIM_HUGE;
        double fill = (double)size * k / (double)span;
        if (fill > best) {
            best = fill;
            *count = k;
            *stride = span / (size_t)k;
        }
    }
}

static void pool_give(uint8_t *data, size_t size);

static uint8_t *block_alloc(size_t size, bool zeroed)
{
    if (size < SIM_POOL_MIN)
        return zeroed ? calloc(size, 1) : malloc(size);
    int k;
    size_t stride;
    block_slab(size, &k, &stride);
    size_t span = stride * (size_t)k, extra = span % SIM_HUGE == 0 ? SIM_HUGE : 0; /* room to align */
    uint8_t *raw = mmap(NULL, span + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uint8_t *a = raw;
    if (extra) { /* keep the 2 MB-aligned span, unmap the rest (outside it: no 2 MB page is split) */
        a = (uint8_t *)(((uintptr_t)raw + SIM_HUGE - 1) & ~(uintptr_t)(SIM_HUGE - 1));
        if (a > raw)
            munmap(raw, (size_t)(a - raw));
        if (raw + span + extra > a + span)
            munmap(a + span, (size_t)(raw + span + extra - (a + span)));
#ifdef MADV_HUGEPAGE
        (void)madvise(a, span, MADV_HUGEPAGE); /* before populating: the pages come as 2 MB ones */
#endif
    }
#ifdef MADV_POPULATE_WRITE
    (void)madvise(a, span, MADV_POPULATE_WRITE); /* zeroed by the kernel */
#endif
    for (int i = 1; i < k; i++)
        pool_give(a + (size_t)i * stride, size);
    return a;
}

static void block_free(uint8_t *data, size_t size)
{
    if (data && size >= SIM_POOL_MIN) {
        int k;
        size_t stride;
        block_slab(size, &k, &stride);
        munmap(data, stride);
    } else {
        free(data);
    }
}

static uint8_t *pool_take(size_t size)
{
    uint8_t *d = NULL;
    pthread_mutex_lock(&pool_mu);
    for (int i = pool_n - 1; i >= 0; i--)
        if (pool[i].size == size) {
            d = pool[i].data;
            pool_bytes -= size;
            pool[i] = pool[--pool_n];
            break;
        }
    pthread_mutex_unlock(&pool_mu);
    return d;
}

static void pool_give(uint8_t *data, size_t size)
{
    if (size >= SIM_POOL_MIN) {
        pthread_mutex_lock(&pool_mu);
        if (pool_n < SIM_POOL_BLOCKS && pool_bytes + size <= SIM_POOL_MAX_BYTES) {
            pool[pool_n].size = size;
            pool[pool_n].data = data;
            pool_n++;
            pool_bytes += size;
            data = NULL;
        }
        pthread_mutex_unlock(&pool_mu);
    }
    block_free(data, size);
}

sim_buf *sim_buf_new(size_t size)
{
    sim_buf *b = malloc(sizeof *b);
    if (!b)
        return NULL;
    b->data = block_alloc(size ? size : 1, true);
    if (!b->data) {
        free(b);
        return NULL;
    }
    b->size = size;
    b->alloc = size ? size : 1;
    b->refcount = 1;
    return b;
}

sim_buf *sim_buf_new_uninit(size_t size)
{
    size_t alloc = size ? size : 1;
    uint8_t *d = alloc >= SIM_POOL_MIN ? pool_take(alloc) : NULL;
    if (!d)
        d = block_alloc(alloc, false);
    sim_buf *b = d ? malloc(sizeof *b) : NULL;
    if (!b) {
        block_free(d, alloc);
        return NULL;
    }
    b->data = d;
    b->size = size;
    b->alloc = alloc;
    b->refcount = 1;
    return b;
}

sim_buf *sim_buf_ref(sim_buf *b)
{
    if (b)
        __atomic_add_fetch(&b->refcount, 1, __ATOMIC_RELAXED);
    return b;
}

void sim_buf_unref(sim_buf *b)
{
    if (!b || __atomic_sub_fetch(&b->refcount, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    pool_give(b->data, b->alloc);
    free(b);
}

static void buf_image_destroy(ks_image *img, void *ctx)
{
    (void)img;
    sim_buf_unref(ctx);
}

ks_image *sim_buf_image(sim_buf *b, ks_image_format fmt, int w, int h, int stride)
{
    ks_image *img = ks_image_wrap(fmt, w, h, stride, b->data, b->size, buf_image_destroy, b);
    if (img)
        sim_buf_ref(b);
    return img;
}

/* ---- event heap ---- */

static bool ev_less(const sim_event *a, const sim_event *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static bool push_event(sim_world *w, sim_event ev)
{
    if (w->heap_n == w->heap_cap) {
        int cap = w->heap_cap ? w->heap_cap * 2 : 256;
        sim_event *h = realloc(w->heap, (size_t)cap * sizeof *h);
        if (!h)
            return false;
        w->heap = h;
        w->heap_cap = cap;
    }
    ev.seq = w->seq++;
    int i = w->heap_n++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!ev_less(&ev, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = ev;
    return true;
}

static sim_event pop_event(sim_world *w)
{
    sim_event top = w->heap[0];
    sim_event last = w->heap[--w->heap_n];
    int n = w->heap_n, i = 0;
    if (n == 0)
        return top;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = -1;
        const sim_event *best = &last;
        if (l < n && ev_less(&w->heap[l], best)) {
            m = l;
            best = &w->heap[l];
        }
        if (r < n && ev_less(&w->heap[r], best))
            m = r;
        if (m < 0)
            break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    w->heap[i] = last;
    return top;
}

/* ---- clocks ---- */

static uint64_t host_time(const sim_world *w, int host, uint64_t t)
{
    const sim_host *h = &w->hosts[host];
    return (uint64_t)(h->offset_ns + (double)t * h->rate);
}

static double period_us(const sim_dev *d);

/* The clock reads one frame period at the instant that zeroes it, so that the start of the first
 * exposure (up to half a period earlier) still has a positive timestamp. */
static uint64_t dev_time_us(const sim_dev *d, uint64_t t)
{
    double us = d->offset_us + period_us(d) + ((double)t - (double)d->zero_ns) / 1000.0 * d->clk_rate;
    return us > 0 ? (uint64_t)llround(us) : 0;
}

static double period_us(const sim_dev *d)
{
    return ks_frame_period_exact_us(d->cfg.camera_fps);
}

/* Writes d->reason through a local buffer (the arguments often live in the same world struct). */
static void set_reason(sim_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_reason(sim_dev *d, const char *fmt, ...)
{
    char tmp[sizeof d->reason];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(d->reason, tmp, sizeof tmp);
}

/* ---- helpers ---- */

static int trigger_target(const ks_rig *rig)
{
    if (!rig->trigger.present)
        return -1;
    if (rig->trigger.to >= 0 && rig->trigger.to < rig->device_count)
        return rig->trigger.to;
    if (rig->master >= 0 && rig->master < rig->device_count)
        return rig->master;
    for (int i = 0; i < rig->device_count; i++) {
        bool has_in = false;
        for (int c = 0; c < rig->cable_count; c++)
            if (rig->cables[c].to == i)
                has_in = true;
        if (!has_in)
            return i;
    }
    return 0;
}

static bool has_color(const ks_device_config *c)
{
    return c->color_resolution != KS_COLOR_OFF;
}

static bool has_depth(const ks_device_config *c)
{
    return c->depth_mode != KS_DEPTH_OFF;
}

static double color_exposure_us(sim_dev *d, uint64_t t, double *gain)
{
    double P = period_us(d);
    /* model: under nominal light auto exposure aims at a fixed time (a quarter of the 30 fps period,
     * whatever the fps: the scene's light does not depend on the frame rate), and the picture's
     * brightness is light x exposure / that time, so the same exposure gives the same picture at 5, 15
     * or 30 fps */
    double ref = ks_frame_period_exact_us(KS_FPS_30) / 4.0;
    double b = 1.0 + d->w->cfg.brightness_variation *
                         sin(6.283185307179586 * ((double)t * 1e-9 / d->bright_period_s) + d->bright_phase);
    if (b < 0.05)
        b = 0.05;
    double e;
    if (d->ctl_mode[KS_CONTROL_EXPOSURE_TIME_ABSOLUTE] == KS_CONTROL_MODE_AUTO) {
        e = ref / b;
        if (e < ks_exposure_min_us())
            e = ks_exposure_min_us();
    } else {
        e = d->ctl_value[KS_CONTROL_EXPOSURE_TIME_ABSOLUTE];
    }
    if (e > P)
        e = P; /* the exposure cannot outlast the frame */
    *gain = b * e / ref;
    return e;
}

static void update_host_limits(sim_world *w)
{
    double cap = ks_usb3_controller_bandwidth_mbps();
    for (int i = 0; i < w->rig.device_count; i++) {
        sim_dev *d = &w->devs[i];
        d->p_usb = d->p_usbfs = 0;
        if (!d->streaming)
            continue;
        double demand = 0;
        int on_host = 0;
        for (int j = 0; j < w->rig.device_count; j++) {
            sim_dev *o = &w->devs[j];
            if (!o->streaming || o->disconnected)
                continue;
            if (o->controller == d->controller)
                demand += ks_stream_bandwidth_mbps(o->cfg.color_resolution, o->cfg.color_format,
                                                   o->cfg.depth_mode, o->cfg.camera_fps);
            if (o->host == d->host)
                on_host++;
        }
        if (demand > cap)
            d->p_usb = 1.0 - cap / demand;
        if (w->cfg.usbfs_mb > 0) {
            double need = ks_usbfs_recommended_mb(on_host);
            if (w->cfg.usbfs_mb < need)
                d->p_usbfs = 1.0 - w->cfg.usbfs_mb / need;
        }
    }
    /* interference settles once every window that could overlap a capture has been registered */
    double lag = 0;
    for (int i = 0; i < w->rig.device_count; i++) {
        sim_dev *d = &w->devs[i];
        if (!d->streaming || !has_depth(&d->cfg))
            continue;
        double W = ks_depth_laser_window_us(d->cfg.depth_mode);
        double sd = d->cfg.wired_sync_mode == KS_SYNC_SUBORDINATE
                        ? ks_delay_effective_us(d->cfg.subordinate_delay_off_master_usec)
                        : 0;
        double dd = has_color(&d->cfg) ? ks_delay_effective_us(d->cfg.depth_delay_off_color_usec) : 0;
        double lead = W / 2 - sd - dd + 6 * d->jitter_us;
        if (lead > lag)
            lag = lead;
    }
    w->lag_ns = (uint64_t)(lag * 1000.0) + 1000;
}

static void frame_free(sim_frame *f)
{
    free(f);
}

/* ---- sync pulses and captures ---- */

static void schedule_capture(sim_world *w, sim_dev *d, double S, int64_t idx)
{
    uint64_t t_true = S > 0 ? (uint64_t)llround(S) : 0;
    sim_event ev = {.t = t_true > w->now_ns ? t_true : w->now_ns, .type = EV_CAPTURE, .dev = d->index,
                    .gen = d->gen, .idx = idx, .t_true = t_true};
    push_event(w, ev);
}

static void mirror_pulse(sim_world *w, int from, uint64_t t, int64_t idx, double rate)
{
    for (int c = 0; c < w->rig.cable_count; c++) {
        const ks_rig_cable *cb = &w->rig.cables[c];
        if (cb->from != from || w->cable_unplugged[c] || w->cable_wrong_jack[c] || cb->to < 0 ||
            cb->to >= w->rig.device_count)
            continue;
        double len = cb->length_m > 0 ? cb->length_m : w->cfg.default_cable_m;
        uint64_t delay = (uint64_t)llround(len * w->cfg.propagation_ns_per_m);
        sim_event ev = {.t = t + delay, .type = EV_PULSE, .dev = cb->to, .idx = idx, .rate = rate};
        push_event(w, ev);
    }
}

static bool trigger_ok_for(sim_world *w, sim_dev *d, char *why, size_t n)
{
    if (!w->trigger_electrical_ok) {
        snprintf(why, n, "%s", w->trigger_reason);
        return false;
    }
    ks_fps f;
    if (!ks_trigger_frequency_supported(w->trigger_hz, &f)) {
        snprintf(why, n,
                 "the external trigger runs at %.6f Hz, not precisely 30, 15 or 5 Hz; the device ignores it. "
                 "Set the generator to the camera frame rate (%d Hz)",
                 w->trigger_hz, ks_fps_hz(d->cfg.camera_fps));
        return false;
    }
    if (f != d->cfg.camera_fps) {
        snprintf(why, n,
                 "the external trigger runs at %.3f Hz but the camera is configured for %d fps; they must be "
                 "equal: set the generator to %d Hz or the camera to %d fps",
                 w->trigger_hz, ks_fps_hz(d->cfg.camera_fps), ks_fps_hz(d->cfg.camera_fps), ks_fps_hz(f));
        return false;
    }
    return true;
}

static void on_pulse(sim_world *w, const sim_event *ev)
{
    sim_dev *d = &w->devs[ev->dev];
    if (d->disconnected)
        return; /* an unpowered device passes nothing on */
    bool from_trigger = ev->aux != 0;
    bool own_master = d->streaming && d->cfg.wired_sync_mode == KS_SYNC_MASTER;
    if (own_master)
        return; /* a master drives its own Sync Out and ignores Sync In, an external trigger's too */
    bool accept = d->streaming && d->cfg.wired_sync_mode == KS_SYNC_SUBORDINATE;
    if (from_trigger && !accept && d->streaming)
        return;
    if (from_trigger && d->streaming) {
        char why[256];
        if (!trigger_ok_for(w, d, why, sizeof why)) {
            set_reason(d, "device %s: %s", d->w->rig.devices[d->index].serial, why);
            return; /* rejected: nothing captured, nothing passed on */
        }
    }
    double rate = ev->rate;
    if (accept && w->now_ns >= d->armed_ns) {
        d->stats.pulses_seen++;
        d->last_pulse_ns = w->now_ns;
        if (!d->zeroed) {
            d->zeroed = true;
            d->zero_ns = w->now_ns;
            d->zero_pulse = ev->idx;
            d->clk_rate = from_trigger ? d->rate_own : ev->rate;
            d->stats.zeroed_at_pulse = ev->idx;
        }
        if (from_trigger)
            rate = d->rate_own;
        double sd = d->cfg.wired_sync_mode == KS_SYNC_SUBORDINATE
                        ? ks_delay_effective_us(d->cfg.subordinate_delay_off_master_usec)
                        : 0;
        double jit = d->jitter_us * 1000.0 * sim_rand_normal(&w->rng);
        double S = (double)w->now_ns + sd * 1000.0 + jit;
        schedule_capture(w, d, S, ev->idx);
        d->reason[0] = 0;
    }
    /* Sync In is mirrored to Sync Out by every powered device that is not a free-running master */
    mirror_pulse(w, d->index, w->now_ns + (uint64_t)w->cfg.hop_delay_ns, ev->idx, rate);
}

static void on_tick(sim_world *w, const sim_event *ev)
{
    sim_dev *d = &w->devs[ev->dev];
    if (ev->gen != d->gen || !d->streaming || d->disconnected)
        return;
    if (d->cfg.wired_sync_mode == KS_SYNC_SUBORDINATE && (!d->free_run || ev->aux != (int)d->free_runs))
        return; /* a free-run tick of a subordinate whose cable is back (or of an older episode) */
    if (ev->idx == 0 && !d->zeroed) {
        d->zeroed = true;
        d->zero_ns = w->now_ns;
        d->zero_pulse = 0;
        d->clk_rate = d->rate_own;
        d->stats.zeroed_at_pulse = 0;
    }
    schedule_capture(w, d, (double)w->now_ns, ev->idx);
    if (d->cfg.wired_sync_mode == KS_SYNC_MASTER)
        mirror_pulse(w, d->index, w->now_ns, ev->idx, d->rate_own);
    double nominal = (double)d->tick0_ns + (double)(ev->idx + 1) * d->period_ns;
    double t = nominal + d->jitter_us * 1000.0 * sim_rand_normal(&w->rng);
    sim_event nx = {.t = t > (double)w->now_ns ? (uint64_t)t : w->now_ns + 1, .type = EV_TICK, .dev = d->index,
                    .gen = d->gen, .idx = ev->idx + 1, .aux = ev->aux};
    push_event(w, nx);
}

static void on_trigger(sim_world *w, const sim_event *ev)
{
    int to = trigger_target(&w->rig);
    if (to >= 0 && !w->trigger_stopped) {
        sim_event p = {.t = w->now_ns, .type = EV_PULSE, .dev = to, .idx = ev->idx, .aux = 1, .rate = 1.0};
        push_event(w, p);
    }
    double t = (double)(ev->idx + 1) * 1e9 / w->trigger_hz;
    sim_event nx = {.t = (uint64_t)t, .type = EV_TRIGGER, .idx = ev->idx + 1};
    push_event(w, nx);
}

static void on_capture(sim_world *w, const sim_event *ev)
{
    sim_dev *d = &w->devs[ev->dev];
    if (ev->gen != d->gen || !d->streaming || d->disconnected)
        return;
    uint64_t S = ev->t_true;
    d->sequence++;
    d->stats.captures_taken++;
    sim_frame *f = calloc(1, sizeof *f);
    if (!f)
        return;
    f->device = d->index;
    f->gen = d->gen;
    f->depth_mode = d->cfg.depth_mode;
    f->color_res = d->cfg.color_resolution;
    f->color_format = d->cfg.color_format;
    f->streams = d->streams;
    f->truth.sequence = d->sequence;
    f->truth.sync_ns = S;
    f->truth.pulse_index = ev->idx;
    uint64_t complete = S;
    bool sof = ks_ts_is_start_of_frame(w->cfg.device_timestamps, d->cfg.wired_sync_mode);
    if (has_color(&d->cfg)) {
        double gain;
        double E = color_exposure_us(d, S, &gain);
        uint64_t half = (uint64_t)(E * 500.0);
        f->has_color = true;
        f->gain = gain;
        f->truth.color_exposure_us = (uint32_t)llround(E);
        uint64_t C = S; /* colour centre: the sync instant, unless an exposure write moved it (SDK #471) */
        if (d->exp_shift_left > 0) {
            d->exp_shift_left--;
            double sh = w->cfg.exposure_write_shift_us * 1000.0;
            C = (double)S + sh > (double)half ? (uint64_t)llround((double)S + sh) : half;
        }
        f->truth.color_center_ns = C;
        f->truth.color_start_ns = C > half ? C - half : 0;
        f->color_ts_us = dev_time_us(d, sof ? f->truth.color_start_ns : C);
        complete = C + half;
    }
    if (has_depth(&d->cfg)) {
        const ks_depth_mode_info *m = ks_depth_mode_get(d->cfg.depth_mode);
        double dd = has_color(&d->cfg) ? ks_delay_effective_us(d->cfg.depth_delay_off_color_usec) : 0;
        double center = (double)S + dd * 1000.0;
        double W = m->laser_pulses ? ks_depth_laser_window_us(d->cfg.depth_mode) : m->exposure_us;
        double start = center - W * 500.0;
        if (start < 0)
            start = 0;
        f->has_depth = m->laser_pulses > 0;
        f->has_ir = true;
        f->depth_exposure_us = (uint64_t)m->exposure_us;
        f->truth.depth_center_ns = (uint64_t)center;
        f->truth.depth_start_ns = (uint64_t)start;
        double ts_at = sof ? center - m->exposure_us * 500.0 : center;
        f->depth_ts_us = dev_time_us(d, ts_at > 0 ? (uint64_t)ts_at : 0);
        if (m->laser_pulses) {
            sim_laser *l = &d->laser[d->laser_next++ % SIM_LASER_RING];
            l->start_ns = (uint64_t)start;
            l->pulses = m->laser_pulses;
            l->width_ns = (uint64_t)m->pulse_width_us * 1000;
            l->pitch_ns = (uint64_t)ks_depth_pulse_pitch_us(d->cfg.depth_mode) * 1000;
        }
        uint64_t end = (uint64_t)(center + W * 500.0);
        if (end > complete)
            complete = end;
    }
    /* losses decided at the device: always draw both numbers so the random stream does not depend on them */
    double r_usb = rand_unit(&w->rng), r_usbfs = rand_unit(&w->rng);
    uint64_t *drop = NULL;
    if (d->startup_drops > 0) {
        d->startup_drops--;
        drop = &d->stats.dropped_startup;
    } else if (d->disturb_next) {
        d->disturb_next = false;
        drop = &d->stats.dropped_exposure;
    } else if (d->drop_remaining > 0) {
        d->drop_remaining--;
        drop = &d->stats.dropped_fault;
    } else if (r_usb < d->p_usb) {
        drop = &d->stats.dropped_usb;
    } else if (r_usbfs < d->p_usbfs) {
        drop = &d->stats.dropped_usbfs;
    }
    if (drop) {
        (*drop)++;
        frame_free(f);
        return;
    }
    if (d->bad_remaining > 0) {
        d->bad_remaining--;
        f->bad = true;
    }
    double lat = w->cfg.usb_latency_us + fabs(w->cfg.usb_jitter_us * sim_rand_normal(&w->rng));
    uint64_t arrival = complete + (uint64_t)(lat * 1000.0);
    f->truth.arrival_ns = arrival;
    uint64_t deliver = arrival;
    if (f->has_depth) {
        uint64_t settle = complete + w->lag_ns;
        if (settle > deliver)
            deliver = settle;
    }
    f->deliver_ns = deliver;
    sim_event de = {.t = deliver, .type = EV_DELIVER, .dev = d->index, .gen = d->gen, .frame = f};
    if (!push_event(w, de))
        frame_free(f);
}

static void check_interference(sim_world *w, sim_frame *f)
{
    sim_dev *a = &w->devs[f->device];
    if (!f->has_depth)
        return;
    const sim_laser *la = NULL;
    for (int k = 0; k < SIM_LASER_RING; k++)
        if (a->laser[k].pulses && a->laser[k].start_ns == f->truth.depth_start_ns)
            la = &a->laser[k];
    if (!la)
        return;
    uint64_t a_end = la->start_ns + (uint64_t)(la->pulses - 1) * la->pitch_ns + la->width_ns;
    f->pulses = la->pulses;
    /* Every other laser counts, whatever the rig's groups say: whether it lights what this device sees
     * is geometry, decided per pixel by the renderer (pair masks). Damage grows with the time the
     * pulses overlap: the share is the summed overlap over the capture's total pulse time. */
    for (int j = 0; j < w->rig.device_count && f->n_interf < SIM_MAX_INTERFERERS; j++) {
        if (j == f->device)
            continue;
        sim_dev *b = &w->devs[j];
        int overl = 0;
        double overlap_ns = 0;
        for (int k = 0; k < SIM_LASER_RING; k++) {
            const sim_laser *lb = &b->laser[k];
            if (!lb->pulses)
                continue;
            uint64_t b_end = lb->start_ns + (uint64_t)(lb->pulses - 1) * lb->pitch_ns + lb->width_ns;
            if (lb->start_ns >= a_end || la->start_ns >= b_end)
                continue;
            for (int p = 0; p < la->pulses; p++) {
                int64_t pa = (int64_t)(la->start_ns + (uint64_t)p * la->pitch_ns);
                for (int q = 0; q < lb->pulses; q++) {
                    int64_t pb = (int64_t)(lb->start_ns + (uint64_t)q * lb->pitch_ns);
                    /* time both pulses are on */
                    int64_t lo = pa > pb ? pa : pb;
                    int64_t hi_a = pa + (int64_t)la->width_ns, hi_b = pb + (int64_t)lb->width_ns;
                    int64_t hi = hi_a < hi_b ? hi_a : hi_b;
                    if (hi > lo) {
                        overl++;
                        overlap_ns += (double)(hi - lo);
                    }
                }
            }
        }
        if (overl > 0) {
            f->interf_dev[f->n_interf] = j;
            f->interf_pulses[f->n_interf] = overl;
            double total = (double)la->pulses * (double)la->width_ns;
            f->interf_share[f->n_interf] = total > 0 ? fmin(1.0, overlap_ns / total) : 0;
            f->interf_mode[f->n_interf] = b->cfg.depth_mode;
            f->n_interf++;
        }
    }
    f->truth.interfering_devices = f->n_interf;
}

static void enqueue(sim_world *w, sim_dev *d, sim_frame *f)
{
    int cap = w->cfg.queue_frames;
    if (d->q_count == cap) {
        frame_free(d->queue[d->q_head]);
        d->q_head = (d->q_head + 1) % cap;
        d->q_count--;
        d->stats.dropped_queue++;
    }
    d->queue[(d->q_head + d->q_count) % cap] = f;
    d->q_count++;
    pthread_cond_broadcast(&w->cond);
}

static void on_deliver(sim_world *w, const sim_event *ev)
{
    sim_dev *d = &w->devs[ev->dev];
    sim_frame *f = ev->frame;
    if (ev->gen != d->gen || !d->streaming || d->disconnected) {
        frame_free(f);
        return;
    }
    check_interference(w, f);
    sim_host *h = &w->hosts[d->host];
    if (h->stalled) {
        /* the host reads nothing: the device keeps a few frames, then loses the oldest */
        f->next = NULL;
        sim_frame **pp = &d->stall_head;
        while (*pp)
            pp = &(*pp)->next;
        *pp = f;
        if (++d->stall_count > w->cfg.device_buffer_frames) {
            sim_frame *old = d->stall_head;
            d->stall_head = old->next;
            frame_free(old);
            d->stall_count--;
            d->stats.dropped_stall++;
        }
        return;
    }
    f->system_ts_ns = host_time(w, d->host, f->truth.arrival_ns);
    enqueue(w, d, f);
}

static void on_stall_end(sim_world *w, int host)
{
    sim_host *h = &w->hosts[host];
    h->stalled = false;
    for (int i = 0; i < w->rig.device_count; i++) {
        sim_dev *d = &w->devs[i];
        if (d->host != host)
            continue;
        while (d->stall_head) {
            sim_frame *f = d->stall_head;
            d->stall_head = f->next;
            d->stall_count--;
            f->truth.arrival_ns = w->now_ns + (uint64_t)(w->cfg.usb_latency_us * 1000.0);
            f->system_ts_ns = host_time(w, host, f->truth.arrival_ns);
            if (d->streaming && !d->disconnected && f->gen == d->gen)
                enqueue(w, d, f);
            else
                frame_free(f);
        }
    }
}

static void on_fault(sim_world *w, const sim_event *ev)
{
    const ks_sim_fault *ft = &w->cfg.faults[ev->aux];
    bool end = ev->idx == 1;
    switch (ft->kind) {
    case KS_SIM_FAULT_UNPLUG:
        if (ft->cable >= 0 && ft->cable < w->rig.cable_count) {
            w->cable_unplugged[ft->cable] = !end;
            int to = w->rig.cables[ft->cable].to;
            if (ft->free_run && to >= 0 && to < w->rig.device_count) {
                /* SDK #1850: the subordinate keeps streaming, free-running on its own oscillator from its
                 * last pulse on; its clock is no longer disciplined; plugged back, it follows pulses again */
                sim_dev *d = &w->devs[to];
                if (!end && d->streaming && d->cfg.wired_sync_mode == KS_SYNC_SUBORDINATE && !d->free_run) {
                    d->free_run = true;
                    d->free_runs++;
                    double P = period_us(d) * 1000.0 / d->rate_own;
                    uint64_t from = d->last_pulse_ns ? d->last_pulse_ns : w->now_ns;
                    d->clk_rate = d->rate_own;
                    d->tick0_ns = from;
                    uint64_t k = 1;
                    while ((double)from + (double)k * P <= (double)w->now_ns)
                        k++;
                    sim_event e = {.t = (uint64_t)((double)from + (double)k * P), .type = EV_TICK, .dev = to,
                                   .gen = d->gen, .idx = (int64_t)k, .aux = (int)d->free_runs};
                    d->period_ns = P;
                    push_event(w, e);
                } else if (end) {
                    d->free_run = false;
                }
            }
        }
        break;
    case KS_SIM_FAULT_DISCONNECT:
        if (ft->device >= 0 && ft->device < w->rig.device_count) {
            sim_dev *d = &w->devs[ft->device];
            d->disconnected = true;
            d->stats.disconnected = true;
            set_reason(d, "device %s was disconnected (USB) at %.1f ms; check its USB and power cables, then reopen it",
                     w->rig.devices[ft->device].serial, ft->at_ms);
            update_host_limits(w);
            pthread_cond_broadcast(&w->cond);
        }
        break;
    case KS_SIM_FAULT_DROP:
        if (ft->device >= 0 && ft->device < w->rig.device_count)
            w->devs[ft->device].drop_remaining += ft->count;
        break;
    case KS_SIM_FAULT_BAD_FRAMES:
        if (ft->device >= 0 && ft->device < w->rig.device_count)
            w->devs[ft->device].bad_remaining += ft->count;
        break;
    case KS_SIM_FAULT_WRONG_JACK:
        if (ft->cable >= 0 && ft->cable < w->rig.cable_count)
            w->cable_wrong_jack[ft->cable] = !end;
        break;
    case KS_SIM_FAULT_JACKS_UNKNOWN:
        if (ft->device >= 0 && ft->device < w->rig.device_count)
            w->devs[ft->device].jacks_unknown = !end;
        break;
    case KS_SIM_FAULT_TRIGGER_STOP:
        w->trigger_stopped = !end;
        w->trigger_stop_ms = ft->at_ms;
        break;
    case KS_SIM_FAULT_STALL_HOST:
        for (int h = 0; h < w->host_count; h++) {
            if (strcmp(w->hosts[h].name, ft->host) != 0)
                continue;
            w->hosts[h].stalled = true;
            sim_event e = {.t = w->now_ns + (uint64_t)(ft->duration_ms * 1e6), .type = EV_STALL_END, .aux = h};
            push_event(w, e);
        }
        break;
    default:
        break;
    }
}

static void process(sim_world *w, const sim_event *ev)
{
    switch (ev->type) {
    case EV_TICK: on_tick(w, ev); break;
    case EV_TRIGGER: on_trigger(w, ev); break;
    case EV_PULSE: on_pulse(w, ev); break;
    case EV_CAPTURE: on_capture(w, ev); break;
    case EV_DELIVER: on_deliver(w, ev); break;
    case EV_FAULT: on_fault(w, ev); break;
    case EV_STALL_END: on_stall_end(w, ev->aux); break;
    default: break;
    }
}

/* ---- advancing the world ---- */

typedef bool (*ready_fn)(sim_world *w, sim_dev *d);

static void cond_wait_wall(sim_world *w, double seconds)
{
    struct timespec until = ks_mono_timespec(ks_mono_ns() + (int64_t)(seconds * 1e9)); /* sub-ms waits too */
    ks_cond_wait_until(&w->cond, &w->mu, &until);
}

/* Processes events until ready(w, d) or the virtual deadline. Called with the lock held. */
static bool advance(sim_world *w, sim_dev *self, uint64_t deadline, ready_fn ready)
{
    pthread_t me = pthread_self();
    for (;;) {
        if (ready && ready(w, self))
            return true;
        if (w->cfg.mode == KS_SIM_PACED) {
            double allowed = (ks_mono_s() - w->wall0) * 1e9;
            uint64_t next = w->heap_n ? w->heap[0].t : UINT64_MAX;
            uint64_t target = next < deadline ? next : deadline;
            if ((double)target > allowed) {
                if (allowed > (double)w->now_ns)
                    w->now_ns = (uint64_t)allowed;
                double wait = ((double)target - allowed) * 1e-9;
                cond_wait_wall(w, wait > 0.05 ? 0.05 : wait);
                continue;
            }
        }
        if (w->heap_n == 0 || w->heap[0].t > deadline) {
            if (deadline > w->now_ns)
                w->now_ns = deadline;
            return ready ? ready(w, self) : true;
        }
        const sim_event *nx = &w->heap[0];
        if (w->cfg.mode == KS_SIM_FAST && w->cfg.lockstep && nx->type == EV_DELIVER) {
            sim_dev *o = &w->devs[nx->dev];
            if (o != self && o->q_count >= w->cfg.queue_frames && o->has_reader &&
                !pthread_equal(o->reader, me) && ks_mono_s() - o->reader_wall < 2.0) {
                cond_wait_wall(w, 0.05);
                continue;
            }
        }
        sim_event ev = pop_event(w);
        if (ev.t > w->now_ns)
            w->now_ns = ev.t;
        process(w, &ev);
    }
}

static bool capture_ready(sim_world *w, sim_dev *d)
{
    (void)w;
    return d->q_count > 0 || d->disconnected;
}

static bool imu_ready(sim_world *w, sim_dev *d)
{
    return w->now_ns >= d->imu_next_ns || d->disconnected || !d->imu_running;
}

static uint64_t deadline_for(sim_world *w, int32_t timeout_ms)
{
    if (timeout_ms < 0)
        return w->now_ns + (uint64_t)3600 * 1000000000ull; /* "forever": one virtual hour */
    return w->now_ns + (uint64_t)timeout_ms * 1000000ull;
}

/* ---- diagnosis ---- */

static void diagnose(sim_world *w, sim_dev *d, char *buf, size_t n)
{
    const char *serial = w->rig.devices[d->index].serial;
    if (d->reason[0]) {
        size_t len = strnlen(d->reason, sizeof d->reason - 1);
        if (len >= n)
            len = n - 1;
        memmove(buf, d->reason, len);
        buf[len] = 0;
        return;
    }
    if (d->disconnected) {
        snprintf(buf, n, "device %s is disconnected", serial);
        return;
    }
    if (!d->streaming) {
        snprintf(buf, n, "device %s is not streaming", serial);
        return;
    }
    if (w->hosts[d->host].stalled) {
        snprintf(buf, n, "host %s reads nothing (a host stall); device %s keeps its last %d frames and loses the "
                         "older ones", w->hosts[d->host].name, serial, w->cfg.device_buffer_frames);
        return;
    }
    bool waits = d->cfg.wired_sync_mode == KS_SYNC_SUBORDINATE || d->triggered;
    bool recent = d->stats.pulses_seen > 0 && (double)(w->now_ns - d->last_pulse_ns) < 3 * d->period_ns;
    if (!waits || recent) {
        buf[0] = 0;
        return;
    }
    int trig = trigger_target(&w->rig);
    if (w->trigger_stopped && trig >= 0 && (trig == d->index || d->stats.pulses_seen > 0)) {
        snprintf(buf, n,
                 "device %s gets no sync pulses: the external trigger generator stopped at %.1f ms; restart it",
                 serial, w->trigger_stop_ms);
        return;
    }
    if (trig == d->index) {
        char why[256];
        if (!trigger_ok_for(w, d, why, sizeof why))
            snprintf(buf, n, "device %s: %s", serial, why);
        else
            snprintf(buf, n, "device %s waits for the external trigger's first pulse", serial);
        return;
    }
    int in = -1;
    for (int c = 0; c < w->rig.cable_count; c++)
        if (w->rig.cables[c].to == d->index)
            in = c;
    if (in < 0) {
        snprintf(buf, n,
                 "device %s (subordinate) has no cable in its Sync In jack, so no sync pulse ever arrives; "
                 "plug the cable from the master (or the previous device) into Sync In",
                 serial);
        return;
    }
    /* walk upstream to the first reason the signal does not get here */
    int cur = d->index, guard = 0;
    while (guard++ < KS_RIG_MAX_DEVICES) {
        if (cur == trig && cur != d->index) {
            char why[256];
            if (!trigger_ok_for(w, &w->devs[cur], why, sizeof why)) {
                snprintf(buf, n, "device %s (subordinate) gets no sync pulses: upstream device %s rejects the "
                         "external trigger: %s", serial, w->rig.devices[cur].serial, why);
                return;
            }
        }
        int c = -1;
        for (int k = 0; k < w->rig.cable_count; k++)
            if (w->rig.cables[k].to == cur)
                c = k;
        if (c < 0)
            break;
        const ks_rig_cable *cb = &w->rig.cables[c];
        const char *up = w->rig.devices[cb->from].serial;
        sim_dev *u = &w->devs[cb->from];
        if (w->cable_unplugged[c]) {
            snprintf(buf, n,
                     "device %s (subordinate) gets no sync pulses: the sync cable from %s's Sync Out to %s's "
                     "Sync In is unplugged; plug it back in",
                     serial, up, w->rig.devices[cur].serial);
            return;
        }
        if (w->cable_wrong_jack[c]) {
            snprintf(buf, n,
                     "device %s (subordinate) gets no sync pulses: the sync cable from %s's Sync Out ends in %s's "
                     "Sync Out jack, not its Sync In (Sync Out to Sync Out carries no pulse); move that end to Sync In",
                     serial, up, w->rig.devices[cur].serial);
            return;
        }
        if (u->disconnected) {
            snprintf(buf, n, "device %s (subordinate) gets no sync pulses: upstream device %s is disconnected",
                     serial, up);
            return;
        }
        if (u->streaming && u->cfg.wired_sync_mode == KS_SYNC_MASTER)
            break;
        if (!u->streaming && trigger_target(&w->rig) != cb->from) {
            bool has_in = false;
            for (int k = 0; k < w->rig.cable_count; k++)
                if (w->rig.cables[k].to == cb->from)
                    has_in = true;
            if (!has_in) {
                snprintf(buf, n,
                         "device %s (subordinate) gets no sync pulses: the master %s is not streaming. Start "
                         "the master last, after every subordinate, with its color camera on",
                         serial, up);
                return;
            }
        }
        cur = cb->from;
    }
    if (d->stats.pulses_seen > 0)
        snprintf(buf, n, "device %s (subordinate) has seen no sync pulse for %.0f ms; check the sync cables and "
                 "that the master still streams", serial, (double)(w->now_ns - d->last_pulse_ns) / 1e6);
    else
        snprintf(buf, n, "device %s (subordinate) has not seen a sync pulse yet; the master may not have started",
                 serial);
}

/* ---- backend ops ---- */

static int op_device_count(void *ctx)
{
    sim_world *w = ctx;
    return w->rig.device_count;
}

/* Streams the host reads: the others are not rendered and come as header-only images (the colour
 * camera: its static view, noise and MJPEG are the bulk of a start-up). The devices run their
 * configuration as before: timing, sync, truth and statistics do not depend on it. Depth and IR are
 * always rendered (the laser damage of the truth is counted on the depth image). */
static void op_set_streams(void *dev, unsigned streams)
{
    sim_dev *d = dev;
    pthread_mutex_lock(&d->w->mu);
    d->streams = streams;
    pthread_mutex_unlock(&d->w->mu);
}

static ks_status op_open(void *ctx, int index, void **dev, ks_error *err)
{
    sim_world *w = ctx;
    pthread_mutex_lock(&w->mu);
    sim_dev *d = &w->devs[index];
    ks_status st = KS_OK;
    if (d->opened)
        st = ks_error_set(err, KS_ESTATE, "simulated device %s is already open; close the other handle first",
                          w->rig.devices[index].serial);
    else if (d->disconnected)
        st = ks_error_set(err, KS_ENODEV, "simulated device %s is disconnected", w->rig.devices[index].serial);
    else {
        d->opened = true;
        d->streams = 0; /* every stream until the new owner says otherwise */
        *dev = d;
    }
    pthread_mutex_unlock(&w->mu);
    return st;
}

static void drain(sim_dev *d)
{
    int cap = d->w->cfg.queue_frames;
    while (d->q_count > 0) {
        frame_free(d->queue[d->q_head]);
        d->q_head = (d->q_head + 1) % cap;
        d->q_count--;
    }
    while (d->stall_head) {
        sim_frame *f = d->stall_head;
        d->stall_head = f->next;
        frame_free(f);
    }
    d->stall_count = 0;
}

static void stop_locked(sim_dev *d)
{
    d->streaming = false;
    d->imu_running = false;
    d->gen++;
    d->zeroed = false;
    drain(d);
    update_host_limits(d->w);
}

static void op_close(void *dev)
{
    sim_dev *d = dev;
    sim_world *w = d->w;
    pthread_mutex_lock(&w->mu);
    if (d->streaming)
        stop_locked(d);
    d->opened = false;
    d->has_reader = false;
    pthread_mutex_unlock(&w->mu);
}

static void parse_version(const char *s, ks_version *v)
{
    unsigned a = 0, b = 0, c = 0;
    if (sscanf(s, "%u.%u.%u", &a, &b, &c) >= 1) {
        v->major = a;
        v->minor = b;
        v->iteration = c;
    }
}

static ks_status op_get_info(void *dev, ks_device_info *info, ks_error *err)
{
    (void)err;
    sim_dev *d = dev;
    const ks_rig_device *rd = &d->w->rig.devices[d->index];
    memset(info, 0, sizeof *info);
    snprintf(info->serial, sizeof info->serial, "%s", rd->serial);
    /* defaults: the firmware of current retail units (1.6.110079014 / 1.6.110 ...) */
    info->rgb = (ks_version){1, 6, 110};
    info->depth = (ks_version){1, 6, 79};
    info->audio = (ks_version){1, 6, 14};
    info->depth_sensor = (ks_version){6109, 7, 0};
    if (rd->firmware[0])
        parse_version(rd->firmware, &info->rgb);
    snprintf(info->backend, sizeof info->backend, "sim");
    return KS_OK;
}

static ks_status op_get_calibration_json(void *dev, char **json, size_t *len, ks_error *err)
{
    sim_dev *d = dev;
    if (!d->calib_json)
        return ks_error_set(err, KS_ENOMEM, "out of memory synthesizing the calibration of %s",
                            d->w->rig.devices[d->index].serial);
    size_t n = strlen(d->calib_json);
    char *c = malloc(n + 1);
    if (!c)
        return ks_error_set(err, KS_ENOMEM, "out of memory copying the calibration");
    memcpy(c, d->calib_json, n + 1);
    *json = c;
    if (len)
        *len = n;
    return KS_OK;
}

static void jacks_locked(sim_world *w, int i, ks_jack_state *j)
{
    j->supported = !w->devs[i].jacks_unknown;
    j->sync_in = j->sync_out = false;
    if (!j->supported)
        return;
    for (int c = 0; c < w->rig.cable_count; c++) {
        if (w->cable_unplugged[c])
            continue;
        if (w->rig.cables[c].to == i) {
            if (w->cable_wrong_jack[c])
                j->sync_out = true; /* the far end in the Sync Out jack */
            else
                j->sync_in = true;
        }
        if (w->rig.cables[c].from == i)
            j->sync_out = true;
    }
    if (trigger_target(&w->rig) == i)
        j->sync_in = true;
}

static ks_status op_get_jacks(void *dev, ks_jack_state *jacks, ks_error *err)
{
    sim_dev *d = dev;
    pthread_mutex_lock(&d->w->mu);
    advance(d->w, d, d->w->now_ns, NULL); /* the jacks reflect every event due by now (a cable pulled at 0) */
    ks_status st = KS_OK;
    if (d->disconnected)
        st = ks_error_set(err, KS_ENODEV, "device %s is disconnected", d->w->rig.devices[d->index].serial);
    else
        jacks_locked(d->w, d->index, jacks);
    pthread_mutex_unlock(&d->w->mu);
    return st;
}

static void control_caps(ks_color_control c, ks_control_caps *k)
{
    memset(k, 0, sizeof *k);
    k->step_value = 1;
    k->default_mode = KS_CONTROL_MODE_MANUAL;
    switch (c) {
    case KS_CONTROL_EXPOSURE_TIME_ABSOLUTE:
        k->supports_auto = true;
        k->min_value = ks_exposure_min_us();
        k->max_value = ks_exposure_max_us(KS_POWERLINE_50HZ) > ks_exposure_max_us(KS_POWERLINE_60HZ)
                           ? ks_exposure_max_us(KS_POWERLINE_50HZ)
                           : ks_exposure_max_us(KS_POWERLINE_60HZ);
        k->default_value = ks_exposure_round_up(KS_POWERLINE_60HZ, 15625);
        k->default_mode = KS_CONTROL_MODE_AUTO;
        break;
    case KS_CONTROL_AUTO_EXPOSURE_PRIORITY: k->max_value = 1; break; /* deprecated, accepted */
    case KS_CONTROL_BRIGHTNESS: k->max_value = 255; k->default_value = 128; break;
    case KS_CONTROL_CONTRAST: k->max_value = 10; k->default_value = 5; break;
    case KS_CONTROL_SATURATION: k->max_value = 63; k->default_value = 32; break;
    case KS_CONTROL_SHARPNESS: k->max_value = 4; k->default_value = 2; break;
    case KS_CONTROL_WHITEBALANCE:
        k->supports_auto = true;
        k->min_value = 2500;
        k->max_value = 12500;
        k->step_value = 10;
        k->default_value = 4500;
        k->default_mode = KS_CONTROL_MODE_AUTO;
        break;
    case KS_CONTROL_BACKLIGHT_COMPENSATION: k->max_value = 1; break;
    case KS_CONTROL_GAIN: k->max_value = 255; break;
    case KS_CONTROL_POWERLINE_FREQUENCY:
        k->min_value = KS_POWERLINE_50HZ;
        k->max_value = KS_POWERLINE_60HZ;
        k->default_value = KS_POWERLINE_60HZ;
        break;
    default: break;
    }
}

static ks_status op_get_color_control(void *dev, ks_color_control c, ks_control_mode *mode, int32_t *value,
                                      ks_error *err)
{
    sim_dev *d = dev;
    if (c < 0 || c >= KS_CONTROL_COUNT)
        return ks_error_set(err, KS_EINVAL, "unknown color control %d", (int)c);
    pthread_mutex_lock(&d->w->mu);
    if (mode)
        *mode = d->ctl_mode[c];
    if (value) {
        if (c == KS_CONTROL_EXPOSURE_TIME_ABSOLUTE && d->ctl_mode[c] == KS_CONTROL_MODE_AUTO) {
            double g;
            *value = (int32_t)llround(color_exposure_us(d, d->w->now_ns, &g));
        } else {
            *value = d->ctl_value[c];
        }
    }
    pthread_mutex_unlock(&d->w->mu);
    return KS_OK;
}

static ks_status op_set_color_control(void *dev, ks_color_control c, ks_control_mode mode, int32_t value,
                                      ks_error *err)
{
    sim_dev *d = dev;
    ks_control_caps k;
    control_caps(c, &k);
    const char *serial = d->w->rig.devices[d->index].serial;
    if (mode == KS_CONTROL_MODE_AUTO && !k.supports_auto)
        return ks_error_set(err, KS_EINVAL, "device %s: color control %d has no automatic mode; set a value",
                            serial, (int)c);
    if (mode == KS_CONTROL_MODE_MANUAL && (value < k.min_value || value > k.max_value))
        return ks_error_set(err, KS_EINVAL, "device %s: value %d for color control %d is outside %d..%d", serial,
                            value, (int)c, k.min_value, k.max_value);
    pthread_mutex_lock(&d->w->mu);
    if (c == KS_CONTROL_EXPOSURE_TIME_ABSOLUTE && mode == KS_CONTROL_MODE_MANUAL)
        value = ks_exposure_round_up((ks_powerline)d->ctl_value[KS_CONTROL_POWERLINE_FREQUENCY], value);
    if (c == KS_CONTROL_EXPOSURE_TIME_ABSOLUTE && d->streaming &&
        (mode != d->ctl_mode[c] || value != d->ctl_value[c]))
        d->disturb_next = true; /* the sensor reprograms: the next capture is lost */
    if (c == KS_CONTROL_EXPOSURE_TIME_ABSOLUTE && d->streaming && mode == KS_CONTROL_MODE_MANUAL)
        d->exp_shift_left = d->w->cfg.exposure_write_settle_frames; /* SDK #471: even the same value */
    d->ctl_mode[c] = mode;
    if (mode == KS_CONTROL_MODE_MANUAL)
        d->ctl_value[c] = value;
    pthread_mutex_unlock(&d->w->mu);
    return KS_OK;
}

static ks_status op_get_color_control_caps(void *dev, ks_color_control c, ks_control_caps *caps, ks_error *err)
{
    (void)dev;
    if (c < 0 || c >= KS_CONTROL_COUNT)
        return ks_error_set(err, KS_EINVAL, "unknown color control %d", (int)c);
    control_caps(c, caps);
    return KS_OK;
}

static ks_status op_start_cameras(void *dev, const ks_device_config *cfg, ks_error *err)
{
    sim_dev *d = dev;
    sim_world *w = d->w;
    pthread_mutex_lock(&w->mu);
    const char *serial = w->rig.devices[d->index].serial;
    if (d->disconnected) {
        pthread_mutex_unlock(&w->mu);
        return ks_error_set(err, KS_ENODEV, "device %s is disconnected", serial);
    }
    d->cfg = *cfg;
    d->streaming = true;
    d->gen++;
    d->zeroed = false;
    d->zero_pulse = -1;
    d->stats.zeroed_at_pulse = -1;
    d->stats.pulses_seen = 0;
    d->stats.streaming = true;
    d->reason[0] = 0;
    d->disturb_next = false;
    d->startup_drops = (int)(rand_unit(&w->rng) * (w->cfg.startup_drop_max + 1));
    d->armed_ns = w->now_ns + (uint64_t)(w->cfg.start_latency_ms * 1e6);
    if (d->arm_at_ns > w->now_ns)
        d->armed_ns = d->arm_at_ns; /* a start time agreed between hosts (multi-host simulation) */
    d->arm_at_ns = 0;
    d->period_ns = period_us(d) * 1000.0 / d->rate_own;
    /* only a subordinate follows Sync In: a master fed by a trigger runs on its own (docs/hardware-setup.md) */
    d->triggered = trigger_target(&w->rig) == d->index && cfg->wired_sync_mode == KS_SYNC_SUBORDINATE;
    d->zero_ns = w->now_ns;
    d->clk_rate = d->rate_own;
    d->exp_shift_left = 0;
    d->bad_remaining = 0;
    if (cfg->wired_sync_mode == KS_SYNC_STANDALONE || cfg->wired_sync_mode == KS_SYNC_MASTER) {
        d->tick0_ns = d->armed_ns;
        if (cfg->wired_sync_mode == KS_SYNC_STANDALONE) {
            d->zeroed = true; /* a standalone device's clock starts with its cameras */
            d->stats.zeroed_at_pulse = 0;
        }
        sim_event ev = {.t = d->tick0_ns, .type = EV_TICK, .dev = d->index, .gen = d->gen, .idx = 0};
        push_event(w, ev);
    } else if (d->triggered) {
        char why[200];
        if (!trigger_ok_for(w, d, why, sizeof why))
            set_reason(d, "device %s: %s", serial, why);
    }
    update_host_limits(w);
    pthread_mutex_unlock(&w->mu);
    return KS_OK;
}

static void op_stop_cameras(void *dev)
{
    sim_dev *d = dev;
    pthread_mutex_lock(&d->w->mu);
    stop_locked(d);
    d->stats.streaming = false;
    pthread_mutex_unlock(&d->w->mu);
}

/* A copy of img with invalid content: an MJPG cut in half (no end marker: decoders show the rest
 * pink/grey), any other image all zero (black). Timestamps and exposure are kept. */
static ks_image *spoiled(const ks_image *img)
{
    size_t size = img->format == KS_FORMAT_MJPG ? img->size / 2 : img->size;
    ks_image *o = ks_image_create(img->format, img->width, img->height, img->stride, size ? size : 1);
    if (!o)
        return NULL;
    if (img->format == KS_FORMAT_MJPG)
        memcpy(o->data, img->data, size);
    else
        memset(o->data, 0, o->size);
    o->size = size;
    o->device_ts_us = img->device_ts_us;
    o->system_ts_ns = img->system_ts_ns;
    o->exposure_us = img->exposure_us;
    o->white_balance = img->white_balance;
    o->iso_speed = img->iso_speed;
    return o;
}

static ks_status spoil_capture(ks_capture *cap, ks_error *err)
{
    ks_image **imgs[3] = {&cap->color, &cap->depth, &cap->ir};
    for (int i = 0; i < 3; i++) {
        if (!*imgs[i] || ks_image_is_header_only(*imgs[i]))
            continue; /* not read: nothing to spoil */
        ks_image *o = spoiled(*imgs[i]);
        if (!o)
            return ks_error_set(err, KS_ENOMEM, "out of memory for an invalid frame");
        ks_image_release(*imgs[i]);
        *imgs[i] = o;
    }
    return KS_OK;
}

static ks_status op_get_capture(void *dev, ks_capture **out, int32_t timeout_ms, ks_error *err)
{
    sim_dev *d = dev;
    sim_world *w = d->w;
    const char *serial = w->rig.devices[d->index].serial;
    pthread_mutex_lock(&w->mu);
    d->reader = pthread_self();
    d->has_reader = true;
    d->reader_wall = ks_mono_s();
    uint64_t start = w->now_ns;
    advance(w, d, deadline_for(w, timeout_ms), capture_ready);
    if (d->disconnected) {
        pthread_mutex_unlock(&w->mu);
        return ks_error_set(err, KS_ENODEV,
                            "device %s was disconnected; check its USB and power cables and reopen it", serial);
    }
    if (d->q_count == 0) {
        char why[256];
        diagnose(w, d, why, sizeof why);
        double waited_ms = (double)(w->now_ns - start) / 1e6; /* read under the lock: other readers advance it */
        pthread_mutex_unlock(&w->mu);
        return ks_error_set(err, KS_ETIMEOUT, "device %s: no capture within %d ms (virtual %.1f ms)%s%s", serial,
                            timeout_ms, waited_ms, why[0] ? ": " : "", why);
    }
    sim_frame *f = d->queue[d->q_head];
    d->q_head = (d->q_head + 1) % w->cfg.queue_frames;
    d->q_count--;
    d->stats.delivered++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);

    ks_capture *cap = ks_capture_create();
    if (!cap) {
        frame_free(f);
        return ks_error_set(err, KS_ENOMEM, "out of memory for a capture of %s", serial);
    }
    ks_status st = sim_render_capture(w, f, cap, err);
    if (st == KS_OK && f->bad)
        st = spoil_capture(cap, err);
    if (st != KS_OK) {
        ks_capture_release(cap);
        frame_free(f);
        return st;
    }
    pthread_mutex_lock(&w->mu);
    d->last_truth = f->truth;
    d->has_last_truth = true;
    if (f->truth.corrupted_pixels > 0) {
        d->stats.corrupted_frames++;
        d->stats.corrupted_pixels += (uint64_t)f->truth.corrupted_pixels;
    }
    pthread_mutex_unlock(&w->mu);
    frame_free(f);
    *out = cap;
    return KS_OK;
}

static ks_status op_start_imu(void *dev, ks_error *err)
{
    (void)err;
    sim_dev *d = dev;
    pthread_mutex_lock(&d->w->mu);
    d->imu_running = true;
    d->imu_next_ns = d->w->now_ns;
    pthread_mutex_unlock(&d->w->mu);
    return KS_OK;
}

static void op_stop_imu(void *dev)
{
    sim_dev *d = dev;
    pthread_mutex_lock(&d->w->mu);
    d->imu_running = false;
    pthread_mutex_unlock(&d->w->mu);
}

static ks_status op_get_imu_sample(void *dev, ks_imu_sample *out, int32_t timeout_ms, ks_error *err)
{
    sim_dev *d = dev;
    sim_world *w = d->w;
    const char *serial = w->rig.devices[d->index].serial;
    double period_ns = 1e9 / ks_imu_sample_rate_hz();
    pthread_mutex_lock(&w->mu);
    /* the device keeps about a second of samples; older ones are lost when nobody reads */
    double backlog = ((double)w->now_ns - (double)d->imu_next_ns) / period_ns;
    if (backlog > ks_imu_sample_rate_hz()) {
        uint64_t skip = (uint64_t)(backlog - ks_imu_sample_rate_hz());
        d->imu_next_ns += (uint64_t)((double)skip * period_ns);
        d->imu_dropped += skip;
    }
    advance(w, d, deadline_for(w, timeout_ms), imu_ready);
    if (d->disconnected) {
        pthread_mutex_unlock(&w->mu);
        return ks_error_set(err, KS_ENODEV, "device %s was disconnected", serial);
    }
    if (w->now_ns < d->imu_next_ns) {
        pthread_mutex_unlock(&w->mu);
        return ks_error_set(err, KS_ETIMEOUT, "device %s: no IMU sample within %d ms", serial, timeout_ms);
    }
    uint64_t t = d->imu_next_ns;
    d->imu_next_ns = (uint64_t)((double)t + period_ns);
    /* A device at rest: the accelerometer measures +g along world up, expressed in the depth camera
     * frame (R^T (0,0,1): the world z row of the camera->world rotation) and turned into the
     * accelerometer's axes by the calibration's depth->accelerometer rotation; plus the device's bias
     * and white noise of the size its calibration states. The gyro sees no rotation: bias + noise. */
    const ks_imu_spec *imu = ks_imu_spec_get();
    double up[3] = {d->pose_R[6], d->pose_R[7], d->pose_R[8]};
    memset(out, 0, sizeof *out);
    out->temperature_c = 30.0f;
    for (int k = 0; k < 3; k++) {
        const double *Ra = d->depth_to_accel + k * 3;
        double g = imu->gravity_mps2 * (Ra[0] * up[0] + Ra[1] * up[1] + Ra[2] * up[2]);
        out->acc[k] = (float)(g + d->acc_bias[k] + imu->accel_noise_mps2 * sim_rand_normal(&w->rng));
        out->gyro[k] = (float)(d->gyro_bias[k] + imu->gyro_noise_rads * sim_rand_normal(&w->rng));
    }
    out->acc_ts_us = out->gyro_ts_us = dev_time_us(d, t);
    pthread_mutex_unlock(&w->mu);
    return KS_OK;
}

static void op_destroy(void *ctx)
{
    sim_world *w = ctx;
    for (int i = 0; i < w->rig.device_count; i++) {
        sim_dev *d = &w->devs[i];
        drain(d);
        free(d->queue);
        free(d->calib_json);
        sim_render_free(d->render);
    }
    for (int i = 0; i < w->heap_n; i++)
        if (w->heap[i].type == EV_DELIVER)
            frame_free(w->heap[i].frame);
    free(w->heap);
    sim_scene_free(&w->scene);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static int op_usbfs_mb(void *ctx)
{
    return ((sim_world *)ctx)->cfg.usbfs_mb; /* the simulated hosts', never this machine's */
}

static int serial_index(const sim_world *w, const char *serial)
{
    for (int i = 0; i < w->rig.device_count; i++)
        if (!strcmp(w->rig.devices[i].serial, serial))
            return i;
    return -1;
}

static ks_status op_laser_shared(void *ctx, const char *serial_a, const char *serial_b, ks_depth_mode mode,
                                 int *pixels, ks_error *err)
{
    sim_world *w = ctx;
    int a = serial_index(w, serial_a), b = serial_index(w, serial_b);
    if (a < 0 || b < 0) {
        *pixels = -1;
        return ks_error_set(err, KS_ENOTFOUND, "no simulated device %s", a < 0 ? serial_a : serial_b);
    }
    return ks_sim_laser_shared((ks_sim *)w, a, b, mode, pixels, err);
}

static const ks_backend_ops sim_ops = {
    .name = "sim",
    .caps = KS_BACKEND_CAP_VIRTUAL_TIME | KS_BACKEND_CAP_JACKS | KS_BACKEND_CAP_SHARED_CLOCK,
    .device_count = op_device_count,
    .open = op_open,
    .close = op_close,
    .get_info = op_get_info,
    .get_calibration_json = op_get_calibration_json,
    .get_jacks = op_get_jacks,
    .get_color_control = op_get_color_control,
    .set_color_control = op_set_color_control,
    .get_color_control_caps = op_get_color_control_caps,
    .start_cameras = op_start_cameras,
    .stop_cameras = op_stop_cameras,
    .get_capture = op_get_capture,
    .start_imu = op_start_imu,
    .stop_imu = op_stop_imu,
    .get_imu_sample = op_get_imu_sample,
    .destroy = op_destroy,
    .usbfs_mb = op_usbfs_mb,
    .laser_shared = op_laser_shared,
    .set_streams = op_set_streams,
};

/* ---- creation ---- */

static uint64_t serial_seed(uint64_t seed, const char *serial)
{
    uint64_t h = seed ^ 0xcbf29ce484222325ull;
    for (const char *p = serial; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    return h;
}

static int intern(char names[][KS_NAME_MAX], int *count, int max, const char *name)
{
    for (int i = 0; i < *count; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    if (*count >= max)
        return max - 1;
    snprintf(names[*count], KS_NAME_MAX, "%s", name);
    return (*count)++;
}

ks_status ks_backend_open_sim(const ks_rig *rig, const ks_sim_config *cfg_in, ks_backend **out, ks_error *err)
{
    if (!rig || !out)
        return ks_error_set(err, KS_EINVAL, "ks_backend_open_sim: no rig or output given");
    if (rig->device_count < 1 || rig->device_count > KS_RIG_MAX_DEVICES)
        return ks_error_set(err, KS_EINVAL, "the rig has %d devices; the simulator needs 1..%d", rig->device_count,
                            KS_RIG_MAX_DEVICES);
    ks_sim_config defcfg;
    if (!cfg_in) {
        ks_sim_config_init(&defcfg);
        cfg_in = &defcfg;
    }
    /* a real AprilGrid painted on the board: the board takes the printed sheet's size */
    sim_texture grid = {0};
    if (cfg_in->board_aprilgrid[0]) {
        ks_status gs = sim_aprilgrid_texture(cfg_in->board_aprilgrid, &grid, err);
        if (gs != KS_OK)
            return gs;
        defcfg = *cfg_in;
        defcfg.board_width_mm = grid.width_mm;
        defcfg.board_height_mm = grid.height_mm;
        cfg_in = &defcfg;
    }
    if (cfg_in->queue_frames < 1 || cfg_in->queue_frames > 1000)
        return ks_error_set(err, KS_EINVAL, "simulation queue_frames %d is outside 1..1000", cfg_in->queue_frames);
    if (cfg_in->object_count < 0 || cfg_in->object_count > KS_SIM_MAX_OBJECTS || cfg_in->fault_count < 0 ||
        cfg_in->fault_count > KS_SIM_MAX_FAULTS || cfg_in->board_key_count < 0 ||
        cfg_in->board_key_count > KS_SIM_MAX_BOARD_KEYS || cfg_in->device_buffer_frames < 0 ||
        cfg_in->startup_drop_max < 0)
        return ks_error_set(err, KS_EINVAL,
                            "simulation config out of range (objects %d of %d, faults %d of %d, board keys %d of %d); "
                            "start from ks_sim_config_init",
                            cfg_in->object_count, KS_SIM_MAX_OBJECTS, cfg_in->fault_count, KS_SIM_MAX_FAULTS,
                            cfg_in->board_key_count, KS_SIM_MAX_BOARD_KEYS);
    for (int i = 0; i < rig->device_count; i++) {
        const ks_sim_pose *p = &cfg_in->poses[i];
        double dx = p->look_at[0] - p->position[0], dy = p->look_at[1] - p->position[1],
               dz = p->look_at[2] - p->position[2];
        if (p->set && !(dx * dx + dy * dy + dz * dz >= 1.0))
            return ks_error_set(err, KS_EINVAL,
                                "simulated device %d (%s): its pose looks at its own position; give a look_at point "
                                "away from the position",
                                i, rig->devices[i].serial);
    }
    for (int c = 0; c < rig->cable_count; c++)
        if (rig->cables[c].from < 0 || rig->cables[c].from >= rig->device_count || rig->cables[c].to < 0 ||
            rig->cables[c].to >= rig->device_count)
            return ks_error_set(err, KS_EINVAL, "rig cable %d names a device that does not exist", c);
    sim_world *w = calloc(1, sizeof *w);
    if (!w)
        return ks_error_set(err, KS_ENOMEM, "out of memory creating the simulated world");
    w->rig = *rig;
    w->cfg = *cfg_in;
    if (w->cfg.device_timestamps != KS_TS_SEED && w->cfg.device_timestamps != KS_TS_MID_EXPOSURE)
        w->cfg.device_timestamps = rig->ts_convention == KS_TS_SEED ? KS_TS_SEED : KS_TS_MID_EXPOSURE;
    w->rng = cfg_in->seed * 0x2545F4914F6CDD1Dull + 1;
    pthread_mutex_init(&w->mu, NULL);
    ks_cond_init_monotonic(&w->cond);
    w->wall0 = ks_mono_s();

    char hostnames[SIM_MAX_HOSTS][KS_NAME_MAX];
    char ctlnames[KS_RIG_MAX_DEVICES][KS_NAME_MAX];
    int nctl = 0;
    for (int i = 0; i < rig->device_count; i++) {
        const char *h = rig->devices[i].host[0] ? rig->devices[i].host : "localhost";
        w->devs[i].host = intern(hostnames, &w->host_count, SIM_MAX_HOSTS, h);
        char key[2 * KS_NAME_MAX + 8];
        if (rig->devices[i].usb_controller[0])
            snprintf(key, sizeof key, "%s/%s", h, rig->devices[i].usb_controller);
        else
            snprintf(key, sizeof key, "%s/#%d", h, i); /* unknown: assume its own controller */
        char trunc[KS_NAME_MAX];
        snprintf(trunc, sizeof trunc, "%.*s", KS_NAME_MAX - 1, key);
        w->devs[i].controller = intern(ctlnames, &nctl, KS_RIG_MAX_DEVICES, trunc);
    }
    w->controller_count = nctl;
    for (int h = 0; h < w->host_count; h++) {
        snprintf(w->hosts[h].name, KS_NAME_MAX, "%s", hostnames[h]);
        w->hosts[h].offset_ns = (1.0 + 999.0 * rand_unit(&w->rng)) * 1e9; /* hosts booted at different times */
        w->hosts[h].rate = 1.0 + w->cfg.host_drift_ppm * 1e-6 * (2.0 * rand_unit(&w->rng) - 1.0);
    }
    sim_scene_init(&w->scene, &w->cfg, rig);
    ks_status st = KS_OK;
    for (int i = 0; i < rig->device_count && st == KS_OK; i++) {
        sim_dev *d = &w->devs[i];
        d->w = w;
        d->index = i;
        d->queue = calloc((size_t)w->cfg.queue_frames, sizeof *d->queue);
        d->calib_json = ks_calibration_json_synthesize(serial_seed(w->cfg.seed, rig->devices[i].serial),
                                                       rig->devices[i].serial);
        if (!d->queue || !d->calib_json) {
            st = ks_error_set(err, KS_ENOMEM, "out of memory creating simulated device %d", i);
            break;
        }
        /* IMU: axes from the calibration's accelerometer/gyro extrinsics, a bias per device (own
         * generator: the world's random stream stays as it was) */
        ks_calibration ical;
        if (ks_calibration_from_json(d->calib_json, strlen(d->calib_json), KS_DEPTH_NFOV_UNBINNED, KS_COLOR_OFF,
                                     &ical, NULL) == KS_OK) {
            memcpy(d->depth_to_accel, ical.depth_to_accel.R, sizeof d->depth_to_accel);
            memcpy(d->depth_to_gyro, ical.depth_to_gyro.R, sizeof d->depth_to_gyro);
        } else {
            for (int k = 0; k < 9; k++)
                d->depth_to_accel[k] = d->depth_to_gyro[k] = (k % 4 == 0);
        }
        const ks_imu_spec *imu = ks_imu_spec_get();
        uint64_t is = serial_seed(w->cfg.seed, rig->devices[i].serial) ^ 0x494d5562696173ull;
        for (int k = 0; k < 3; k++) {
            d->acc_bias[k] = imu->accel_bias_mps2 * (2.0 * rand_unit(&is) - 1.0);
            d->gyro_bias[k] = imu->gyro_bias_rads * (2.0 * rand_unit(&is) - 1.0);
        }
        const ks_sim_clock *ck = &w->cfg.clocks[i];
        const ks_sim_clock *dk = &w->cfg.clock_default;
        double u1 = 2.0 * rand_unit(&w->rng) - 1.0, u2 = 2.0 * rand_unit(&w->rng) - 1.0;
        d->offset_us = ck->set ? ck->offset_us : dk->offset_us * u1;
        d->drift_ppm = ck->set ? ck->drift_ppm : dk->drift_ppm * u2;
        d->jitter_us = ck->set ? ck->jitter_us : dk->jitter_us;
        d->rate_own = 1.0 + d->drift_ppm * 1e-6;
        d->clk_rate = d->rate_own;
        d->zero_pulse = -1;
        d->stats.zeroed_at_pulse = -1;
        d->bright_phase = 6.283185307179586 * rand_unit(&w->rng);
        d->bright_period_s = 8.0 + 16.0 * rand_unit(&w->rng);
        for (int c = 0; c < KS_CONTROL_COUNT; c++) {
            ks_control_caps k;
            control_caps((ks_color_control)c, &k);
            d->ctl_mode[c] = k.default_mode;
            d->ctl_value[c] = k.default_value;
        }
        /* pose */
        const ks_sim_pose *p = &w->cfg.poses[i];
        double pos[3], look[3], roll = 0;
        if (p->set) {
            memcpy(pos, p->position, sizeof pos);
            memcpy(look, p->look_at, sizeof look);
            roll = p->roll_deg;
        } else {
            double az = 6.283185307179586 * i / rig->device_count;
            pos[0] = w->cfg.ring_radius_mm * cos(az);
            pos[1] = w->cfg.ring_radius_mm * sin(az);
            pos[2] = w->cfg.ring_height_mm;
            look[0] = look[1] = 0;
            look[2] = w->cfg.ring_height_mm * 0.5;
        }
        sim_pose_look_at(pos, look, roll, d->pose_R, d->pose_t);
    }
    /* external trigger */
    if (rig->trigger.present) {
        const ks_trigger_spec *sp = ks_trigger_spec_get();
        w->trigger_hz = rig->trigger.frequency_hz * (1.0 + w->cfg.trigger_frequency_error_ppm * 1e-6);
        w->trigger_electrical_ok = true;
        if (!(rig->trigger.pulse_width_us > sp->min_pulse_width_us)) {
            w->trigger_electrical_ok = false;
            snprintf(w->trigger_reason, sizeof w->trigger_reason,
                     "the external trigger's pulses are %.1f us wide; the device needs more than %.0f us. Widen "
                     "the pulses",
                     rig->trigger.pulse_width_us, sp->min_pulse_width_us);
        } else if (fabs(rig->trigger.voltage_v - sp->voltage_v) > sp->voltage_tolerance_v) {
            w->trigger_electrical_ok = false;
            snprintf(w->trigger_reason, sizeof w->trigger_reason,
                     "the external trigger's level is %.2f V; the device needs %.0f V TTL/CMOS. Use a %.0f V "
                     "output or a level shifter",
                     rig->trigger.voltage_v, sp->voltage_v, sp->voltage_v);
        } else if (rig->trigger.drive_ma < sp->min_drive_ma) {
            w->trigger_electrical_ok = false;
            snprintf(w->trigger_reason, sizeof w->trigger_reason,
                     "the external trigger drives %.1f mA; the device needs at least %.0f mA. Use a stronger "
                     "driver",
                     rig->trigger.drive_ma, sp->min_drive_ma);
        }
        /* an electrically invalid signal is never seen as pulses; a frequency far outside anything a
         * camera runs at is rejected by trigger_ok_for without generating millions of events */
        if (w->trigger_electrical_ok && w->trigger_hz > 0 && w->trigger_hz <= 1000) {
            sim_event ev = {.t = 0, .type = EV_TRIGGER, .idx = 0};
            push_event(w, ev);
        }
    }
    for (int f = 0; f < w->cfg.fault_count; f++) {
        const ks_sim_fault *ft = &w->cfg.faults[f];
        sim_event ev = {.t = (uint64_t)(ft->at_ms * 1e6), .type = EV_FAULT, .aux = f, .idx = 0};
        push_event(w, ev);
        if ((ft->kind == KS_SIM_FAULT_UNPLUG || ft->kind == KS_SIM_FAULT_TRIGGER_STOP ||
             ft->kind == KS_SIM_FAULT_WRONG_JACK || ft->kind == KS_SIM_FAULT_JACKS_UNKNOWN) &&
            ft->duration_ms > 0) {
            ev.t = (uint64_t)((ft->at_ms + ft->duration_ms) * 1e6);
            ev.idx = 1;
            push_event(w, ev);
        }
    }
    if (st == KS_OK && grid.pixels)
        st = ks_sim_set_board_texture((ks_sim *)w, grid.pixels, grid.w, grid.h, grid.w, err);
    free(grid.pixels);
    ks_backend *b = st == KS_OK ? ks_backend_create(&sim_ops, w) : NULL;
    if (!b) {
        if (st == KS_OK)
            st = ks_error_set(err, KS_ENOMEM, "out of memory creating the simulator backend");
        op_destroy(w);
        return st;
    }
    *out = b;
    return KS_OK;
}

/* ---- ground truth API ---- */

ks_sim *ks_sim_from_backend(ks_backend *b)
{
    return ks_backend_context_if(b, &sim_ops);
}

uint64_t ks_sim_now_ns(ks_sim *s)
{
    sim_world *w = (sim_world *)s;
    pthread_mutex_lock(&w->mu);
    uint64_t t = w->now_ns;
    pthread_mutex_unlock(&w->mu);
    return t;
}

void ks_sim_advance(ks_sim *s, double ms)
{
    sim_world *w = (sim_world *)s;
    pthread_mutex_lock(&w->mu);
    advance(w, NULL, w->now_ns + (uint64_t)(ms * 1e6), NULL);
    pthread_mutex_unlock(&w->mu);
}

#define CHECK_DEV(s, device)                                                                              \
    do {                                                                                                  \
        if (!(s) || (device) < 0 || (device) >= ((sim_world *)(s))->rig.device_count)                     \
            return ks_error_set(err, KS_EINVAL, "no simulated device %d", (device));                      \
    } while (0)

ks_status ks_sim_last_truth(ks_sim *s, int device, ks_sim_frame_truth *out, ks_error *err)
{
    CHECK_DEV(s, device);
    sim_world *w = (sim_world *)s;
    pthread_mutex_lock(&w->mu);
    sim_dev *d = &w->devs[device];
    ks_status st = KS_OK;
    if (!d->has_last_truth)
        st = ks_error_set(err, KS_ESTATE, "device %d has not returned a capture yet", device);
    else
        *out = d->last_truth;
    pthread_mutex_unlock(&w->mu);
    return st;
}

ks_status ks_sim_device_stats_get(ks_sim *s, int device, ks_sim_device_stats *out, ks_error *err)
{
    CHECK_DEV(s, device);
    sim_world *w = (sim_world *)s;
    pthread_mutex_lock(&w->mu);
    sim_dev *d = &w->devs[device];
    *out = d->stats;
    out->streaming = d->streaming;
    out->disconnected = d->disconnected;
    out->waiting_for_sync = d->streaming && !d->disconnected &&
                            (d->cfg.wired_sync_mode == KS_SYNC_SUBORDINATE || d->triggered) &&
                            d->stats.pulses_seen == 0;
    diagnose(w, d, out->reason, sizeof out->reason);
    pthread_mutex_unlock(&w->mu);
    return KS_OK;
}

ks_status ks_sim_device_pose(ks_sim *s, int device, ks_extrinsics *e, ks_error *err)
{
    CHECK_DEV(s, device);
    sim_world *w = (sim_world *)s;
    memcpy(e->R, w->devs[device].pose_R, sizeof e->R);
    memcpy(e->t, w->devs[device].pose_t, sizeof e->t);
    return KS_OK;
}

void ks_sim_board_pose(ks_sim *s, uint64_t t_ns, ks_extrinsics *e)
{
    sim_world *w = (sim_world *)s;
    sim_board_pose(&w->scene, t_ns, e->R, e->t);
}

double ks_sim_scene_distance(ks_sim *s, const double p[3], uint64_t t_ns)
{
    sim_world *w = (sim_world *)s;
    return sim_scene_distance(&w->scene, p, t_ns);
}

int ks_sim_usbfs_mb(ks_sim *s)
{
    return s ? ((sim_world *)s)->cfg.usbfs_mb : 0;
}

uint64_t ks_sim_host_time_ns(ks_sim *s, const char *host, uint64_t t_ns)
{
    sim_world *w = (sim_world *)s;
    if (!host)
        host = "localhost";
    for (int h = 0; h < w->host_count; h++)
        if (strcmp(w->hosts[h].name, host) == 0)
            return host_time(w, h, t_ns);
    return host_time(w, 0, t_ns);
}

ks_status ks_sim_device_clock(ks_sim *s, int device, double *rate, double *offset_us, uint64_t *zero_ns,
                              ks_error *err)
{
    CHECK_DEV(s, device);
    sim_world *w = (sim_world *)s;
    pthread_mutex_lock(&w->mu);
    sim_dev *d = &w->devs[device];
    if (rate)
        *rate = d->clk_rate;
    if (offset_us)
        *offset_us = d->offset_us;
    if (zero_ns)
        *zero_ns = d->zero_ns;
    pthread_mutex_unlock(&w->mu);
    return KS_OK;
}

const char *ks_sim_fault_kind_name(ks_sim_fault_kind k)
{
    static const char *const names[] = {"unplug",     "disconnect",   "drop",       "stall",
                                        "trigger-stop", "bad-frames", "wrong-jack", "jacks-unknown"};
    return (k >= 0 && k < KS_SIM_FAULT_KIND_COUNT) ? names[k] : "unknown";
}

/* ---- several processes simulating one rig (multi-host) ----
 * Each host's agent runs a world over the whole rig but opens only its own devices. The worlds run
 * paced, so virtual time follows the wall clock; the coordinator picks a start instant in the near
 * future and every world arms the master at that instant, so its sync pulses reach the local
 * subordinates exactly when they would through a real cable. */

static double realtime_minus_monotonic_s(void)
{
    struct timespec r, m;
    clock_gettime(CLOCK_REALTIME, &r);
    clock_gettime(CLOCK_MONOTONIC, &m);
    return (double)(r.tv_sec - m.tv_sec) + (r.tv_nsec - m.tv_nsec) * 1e-9;
}

uint64_t ks_sim_virtual_from_realtime(ks_sim *s, int64_t realtime_ns)
{
    sim_world *w = (sim_world *)s;
    double mono_s = (double)realtime_ns * 1e-9 - realtime_minus_monotonic_s();
    double v = (mono_s - w->wall0) * 1e9;
    return v > 0 ? (uint64_t)v : 0;
}

int64_t ks_sim_realtime_from_host_ns(ks_sim *s, const char *host, uint64_t host_ns)
{
    sim_world *w = (sim_world *)s;
    int h = 0;
    for (int i = 0; host && i < w->host_count; i++)
        if (strcmp(w->hosts[i].name, host) == 0)
            h = i;
    /* the inverse of host_time(): virtual time, then the wall-clock instant the paced world put it at */
    double t = ((double)host_ns - w->hosts[h].offset_ns) / w->hosts[h].rate;
    struct timespec r, m;
    clock_gettime(CLOCK_REALTIME, &r);
    clock_gettime(CLOCK_MONOTONIC, &m);
    int64_t rm = ((int64_t)r.tv_sec - (int64_t)m.tv_sec) * 1000000000 + (r.tv_nsec - m.tv_nsec);
    return rm + llround(w->wall0 * 1e9) + llround(t);
}

ks_status ks_sim_arm_at(ks_sim *s, int device, uint64_t at_ns, ks_error *err)
{
    sim_world *w = (sim_world *)s;
    if (device < 0 || device >= w->rig.device_count)
        return ks_error_set(err, KS_EINVAL, "no rig device %d in the simulated world", device);
    pthread_mutex_lock(&w->mu);
    bool late = at_ns <= w->now_ns;
    if (!late)
        w->devs[device].arm_at_ns = at_ns;
    uint64_t now = w->now_ns;
    pthread_mutex_unlock(&w->mu);
    if (late)
        return ks_error_set(err, KS_ETIMEOUT,
                            "the agreed start instant (virtual %.3f ms) has already passed here (now %.3f ms); "
                            "the hosts' clocks disagree or the network is slow: start again",
                            at_ns / 1e6, now / 1e6);
    return KS_OK;
}

ks_status ks_sim_start_remote(ks_sim *s, int device, const ks_device_config *cfg, uint64_t at_ns, ks_error *err)
{
    sim_world *w = (sim_world *)s;
    if (device < 0 || device >= w->rig.device_count)
        return ks_error_set(err, KS_EINVAL, "no rig device %d in the simulated world", device);
    sim_dev *d = &w->devs[device];
    if (d->opened)
        return ks_error_set(err, KS_ESTATE, "device %s is opened in this process; start it with start_cameras",
                            w->rig.devices[device].serial);
    ks_status st = ks_sim_arm_at(s, device, at_ns, err);
    if (st != KS_OK)
        return st;
    /* frames are rendered only when a reader takes them, and nobody here reads this device */
    return op_start_cameras(d, cfg, err);
}

void ks_sim_stop_remote(ks_sim *s, int device)
{
    sim_world *w = (sim_world *)s;
    if (device < 0 || device >= w->rig.device_count || w->devs[device].opened)
        return;
    op_stop_cameras(&w->devs[device]);
}
