/* device/sim/sim_render.c: the synthetic scene and the images of simulated devices.
 *
 * Design: every device ray-casts the scene from its true pose through its own factory calibration
 * (kinsync/calibration.h): depth and IR through the depth camera model, colour through the colour
 * camera model placed by the calibration's depth-to-colour extrinsics. Rays are unprojected once
 * per camera and mode (ks_unproject_row: the lens model's Newton solve, several pixels at a time);
 * the static scene is rendered once per camera and mode ("static view", immutable, shared by every
 * frame without copies): the depth camera's view per depth mode and the colour camera's per colour
 * resolution, built apart so that neither is built twice (the laser check of a session asks for
 * the depth views before anything streams; the first capture adds the colour view). A view's rows
 * are built on all CPUs (joined before it returns: nothing runs in the background). A moving board
 * is ray-cast per frame only inside its projected bounding box. Static depth views can be kept on disk
 * between runs (the view cache below). MJPEG frames are encoded with libturbojpeg and cached while the picture does not
 * change. Laser interference damages the depth pixels of A that B's emitter lights (A's 3-D point
 * is inside B's depth view and not occluded from B); those pairs are cached per device pair. */
#define _GNU_SOURCE
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "calib/camera_model.h"
#include "calib/linalg.h"
#include "device/sim/sim_internal.h"
#include "util/bigmem.h"
#include "util/cachefile.h"

/* ---- small vector helpers ---- */

static double dot3(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static void cross3(const double a[3], const double b[3], double o[3])
{
    o[0] = a[1] * b[2] - a[2] * b[1];
    o[1] = a[2] * b[0] - a[0] * b[2];
    o[2] = a[0] * b[1] - a[1] * b[0];
}

static void norm3(double a[3])
{
    double n = sqrt(dot3(a, a));
    if (n > 0) {
        a[0] /= n;
        a[1] /= n;
        a[2] /= n;
    }
}

void sim_pose_look_at(const double pos[3], const double look[3], double roll_deg, double R[9], double t[3])
{
    double z[3] = {look[0] - pos[0], look[1] - pos[1], look[2] - pos[2]};
    norm3(z);
    double up[3] = {0, 0, 1};
    if (fabs(dot3(z, up)) > 0.999) {
        up[0] = 0;
        up[1] = 1;
        up[2] = 0;
    }
    double x[3], y[3];
    cross3(z, up, x); /* camera right */
    norm3(x);
    cross3(z, x, y);  /* camera down */
    double r = roll_deg * 3.141592653589793 / 180.0, c = cos(r), s = sin(r);
    double xr[3], yr[3];
    for (int k = 0; k < 3; k++) {
        xr[k] = c * x[k] + s * y[k];
        yr[k] = -s * x[k] + c * y[k];
    }
    for (int k = 0; k < 3; k++) {
        R[k * 3 + 0] = xr[k];
        R[k * 3 + 1] = yr[k];
        R[k * 3 + 2] = z[k];
        t[k] = pos[k];
    }
}

/* ---- scene ---- */

/* v / 255.0 for every byte v, computed by that very division (the same doubles, without a division
 * per use). */
static double g_by255[256];
static pthread_once_t g_by255_once = PTHREAD_ONCE_INIT;

static void by255_init(void)
{
    for (int v = 0; v < 256; v++)
        g_by255[v] = v / 255.0;
}


static void make_default_texture(sim_scene *sc)
{
    /* AprilGrid-like: 6 x 6 tag-like squares (black border, 6 x 6 seeded bits) with black corner squares */
    const int W = 720, H = 720, N = 6;
    sc->tex = malloc((size_t)W * H);
    if (!sc->tex)
        return;
    sc->tex_w = W;
    sc->tex_h = H;
    memset(sc->tex, 255, (size_t)W * H);
    double T = W / (N + (N + 1) * 0.3), S = 0.3 * T;
    uint64_t rs = 12345;
    for (int ty = 0; ty < N; ty++)
        for (int tx = 0; tx < N; tx++) {
            uint8_t bits[36];
            for (int b = 0; b < 36; b++)
                bits[b] = (uint8_t)(sim_rand_u64(&rs) & 1);
            double x0 = S + tx * (T + S), y0 = S + ty * (T + S);
            for (int y = (int)y0; y < (int)(y0 + T) && y < H; y++)
                for (int x = (int)x0; x < (int)(x0 + T) && x < W; x++) {
                    int cx = (int)((x - x0) / T * 8), cy = (int)((y - y0) / T * 8);
                    bool black = cx <= 0 || cy <= 0 || cx >= 7 || cy >= 7 || bits[(cy - 1) * 6 + (cx - 1)];
                    sc->tex[(size_t)y * W + x] = black ? 0 : 255;
                }
        }
    for (int cy = 0; cy <= N; cy++)
        for (int cx = 0; cx <= N; cx++) {
            double x0 = cx * (T + S), y0 = cy * (T + S);
            for (int y = (int)y0; y < (int)(y0 + S) && y < H; y++)
                for (int x = (int)x0; x < (int)(x0 + S) && x < W; x++)
                    sc->tex[(size_t)y * W + x] = 0;
        }
}

void sim_scene_init(sim_scene *sc, const ks_sim_config *cfg, const ks_rig *rig)
{
    (void)rig;
    memset(sc, 0, sizeof *sc);
    pthread_mutex_init(&sc->tex_mu, NULL);
    pthread_once(&g_by255_once, by255_init); /* before any ray is traced */
    sc->room = strcmp(cfg->scene, "empty") != 0;
    if (sc->room) {
        sc->room_half[0] = sc->room_half[1] = 4000;
        sc->room_height = 3000;
        ks_sim_object defaults[] = {
            {KS_SIM_BOX, {-1400, 600, 0}, {-900, 1100, 700}, 0.6, {200, 80, 60}},
            {KS_SIM_BOX, {900, -1300, 0}, {1500, -800, 450}, 0.5, {60, 120, 200}},
            {KS_SIM_BOX, {-600, -1600, 0}, {-200, -1200, 1100}, 0.7, {220, 200, 90}},
            {KS_SIM_SPHERE, {1100, 900, 350}, {350, 0, 0}, 0.65, {90, 200, 100}},
            {KS_SIM_SPHERE, {-1200, -400, 250}, {250, 0, 0}, 0.55, {200, 90, 200}},
        };
        for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
            sc->objects[sc->object_count++] = defaults[i];
    }
    for (int i = 0; i < cfg->object_count && sc->object_count < KS_SIM_MAX_OBJECTS + 8; i++)
        sc->objects[sc->object_count++] = cfg->objects[i];
    /* a sphere around each box, 1 mm wider than its corners (far above the rounding of the ray tests):
     * a ray that misses it misses the box (intersect_static skips the slab test) */
    for (int i = 0; i < sc->object_count; i++) {
        const ks_sim_object *ob = &sc->objects[i];
        double half2 = 0;
        for (int k = 0; k < 3; k++) {
            double e = 0.5 * (ob->b[k] - ob->a[k]);
            sc->bound[i][k] = 0.5 * (ob->a[k] + ob->b[k]);
            half2 += e * e;
        }
        double rad = sqrt(half2) + 1.0;
        sc->bound[i][3] = rad * rad;
    }
    sc->board = cfg->board;
    sc->board_w = cfg->board_width_mm;
    sc->board_h = cfg->board_height_mm;
    sc->key_count = cfg->board_key_count;
    memcpy(sc->keys, cfg->board_keys, sizeof sc->keys);
    if (sc->key_count == 0) {
        /* facing device 0's side of the ring (+x), upright, centred over the middle of the room */
        sc->key_count = 1;
        sc->keys[0].t_ms = 0;
        sc->keys[0].pos[0] = 0;
        sc->keys[0].pos[1] = 0;
        sc->keys[0].pos[2] = cfg->ring_height_mm * 0.6;
        /* board frame: x right, y down, z into the board (away from a viewer on the +x side):
         * columns x = (0,1,0), y = (0,0,-1), z = (-1,0,0); stored as its rotation vector */
        const double R[9] = {0, 0, -1, 1, 0, 0, 0, -1, 0};
        double th = acos(fmax(-1.0, fmin(1.0, (R[0] + R[4] + R[8] - 1) / 2)));
        double s2 = 2 * sin(th);
        sc->keys[0].rotvec[0] = (R[7] - R[5]) / s2 * th;
        sc->keys[0].rotvec[1] = (R[2] - R[6]) / s2 * th;
        sc->keys[0].rotvec[2] = (R[3] - R[1]) / s2 * th;
    }
    make_default_texture(sc);
    sc->tex_version = 1;
}

void sim_scene_free(sim_scene *sc)
{
    free(sc->tex);
    sc->tex = NULL;
    pthread_mutex_destroy(&sc->tex_mu);
}

void sim_board_pose(const sim_scene *sc, uint64_t t_ns, double R[9], double t[3])
{
    double tm = (double)t_ns / 1e6;
    const ks_sim_board_key *a = &sc->keys[0], *b = &sc->keys[0];
    double u = 0;
    if (sc->key_count > 1) {
        if (tm >= sc->keys[sc->key_count - 1].t_ms) {
            a = b = &sc->keys[sc->key_count - 1];
        } else {
            for (int i = 0; i + 1 < sc->key_count; i++)
                if (tm >= sc->keys[i].t_ms && tm < sc->keys[i + 1].t_ms) {
                    a = &sc->keys[i];
                    b = &sc->keys[i + 1];
                    u = (tm - a->t_ms) / (b->t_ms - a->t_ms);
                    break;
                }
        }
    }
    double w[3];
    for (int k = 0; k < 3; k++) {
        t[k] = a->pos[k] + u * (b->pos[k] - a->pos[k]);
        w[k] = a->rotvec[k] + u * (b->rotvec[k] - a->rotvec[k]);
    }
    ks_rot_exp(w, R);
}

static bool board_moves(const sim_scene *sc)
{
    return sc->board && sc->key_count > 1;
}

typedef struct hit {
    double t;
    double n[3];
    double albedo;
    double rgb[3];   /* rgb8 / 255, set by hit_done once the nearest surface is known */
    uint8_t rgb8[3];
} hit;

static void set_hit(hit *h, double t, double nx, double ny, double nz, double albedo, const uint8_t rgb[3])
{
    h->t = t;
    h->n[0] = nx;
    h->n[1] = ny;
    h->n[2] = nz;
    h->albedo = albedo;
    memcpy(h->rgb8, rgb, 3);
}

/* The colour of the surface that won (one conversion per ray, not one per closer surface found). */
static void hit_done(hit *h)
{
    for (int k = 0; k < 3; k++)
        h->rgb[k] = g_by255[h->rgb8[k]];
}

/* Static scene: room planes, boxes, spheres. d need not be unit length; t is in units of d. */
static bool intersect_static(const sim_scene *sc, const double o[3], const double d[3], hit *h)
{
    h->t = INFINITY;
    if (sc->room) {
        /* floor with a 500 mm checker */
        if (d[2] < 0 && o[2] > 0) {
            double t = -o[2] / d[2];
            double x = o[0] + t * d[0], y = o[1] + t * d[1];
            if (t < h->t && fabs(x) <= sc->room_half[0] && fabs(y) <= sc->room_half[1]) {
                bool c = ((int)floor(x / 500.0) + (int)floor(y / 500.0)) & 1;
                uint8_t g1[3] = {170, 170, 160}, g2[3] = {110, 110, 105};
                set_hit(h, t, 0, 0, 1, c ? 0.7 : 0.45, c ? g1 : g2);
            }
        }
        for (int axis = 0; axis < 2; axis++)
            for (int sgn = -1; sgn <= 1; sgn += 2) {
                double wpos = sgn * sc->room_half[axis];
                if (d[axis] == 0)
                    continue;
                double num = wpos - o[axis];
                if (num == 0 || (num > 0) != (d[axis] > 0))
                    continue; /* the wall is behind: t = num / d would be <= 0 */
                double t = num / d[axis];
                if (t <= 0 || t >= h->t)
                    continue;
                double p[3] = {o[0] + t * d[0], o[1] + t * d[1], o[2] + t * d[2]};
                int other = 1 - axis;
                if (p[2] < 0 || p[2] > sc->room_height || fabs(p[other]) > sc->room_half[other])
                    continue;
                uint8_t wc[3] = {(uint8_t)(180 + 30 * axis), 175, (uint8_t)(150 + 20 * (sgn > 0))};
                double n[3] = {0, 0, 0};
                n[axis] = -sgn;
                set_hit(h, t, n[0], n[1], n[2], 0.6, wc);
            }
    }
    for (int i = 0; i < sc->object_count; i++) {
        const ks_sim_object *ob = &sc->objects[i];
        if (ob->kind == KS_SIM_SPHERE) {
            double oc[3] = {o[0] - ob->a[0], o[1] - ob->a[1], o[2] - ob->a[2]};
            double A = dot3(d, d), B = dot3(oc, d), C = dot3(oc, oc) - ob->b[0] * ob->b[0];
            double disc = B * B - A * C;
            if (disc < 0)
                continue;
            double t = (-B - sqrt(disc)) / A;
            if (t <= 0 || t >= h->t)
                continue;
            double n[3] = {(oc[0] + t * d[0]) / ob->b[0], (oc[1] + t * d[1]) / ob->b[0], (oc[2] + t * d[2]) / ob->b[0]};
            set_hit(h, t, n[0], n[1], n[2], ob->albedo, ob->rgb);
        } else {
            /* a ray that passes the box's bounding sphere misses the box: the slab test's six
             * divisions are not needed (|oc x d|^2 > r^2 |d|^2, without a division) */
            const double *bs = sc->bound[i];
            double oc[3] = {bs[0] - o[0], bs[1] - o[1], bs[2] - o[2]};
            double oc2 = dot3(oc, oc), od = dot3(oc, d), dd = dot3(d, d);
            if (oc2 * dd - od * od > bs[3] * dd)
                continue;
            double t0 = -INFINITY, t1 = INFINITY;
            int ax = -1;
            bool miss = false;
            for (int k = 0; k < 3 && !miss; k++) {
                if (d[k] == 0) {
                    if (o[k] < ob->a[k] || o[k] > ob->b[k])
                        miss = true;
                    continue;
                }
                double ta = (ob->a[k] - o[k]) / d[k], tb = (ob->b[k] - o[k]) / d[k];
                if (ta > tb) {
                    double x = ta;
                    ta = tb;
                    tb = x;
                }
                if (ta > t0) {
                    t0 = ta;
                    ax = k;
                }
                if (tb < t1)
                    t1 = tb;
            }
            if (miss || t0 > t1 || t0 <= 0 || t0 >= h->t || ax < 0)
                continue;
            double n[3] = {0, 0, 0};
            n[ax] = d[ax] > 0 ? -1 : 1;
            set_hit(h, t0, n[0], n[1], n[2], ob->albedo, ob->rgb);
        }
    }
    if (!isfinite(h->t))
        return false;
    hit_done(h);
    return true;
}

static double tex_sample(const sim_scene *sc, double u, double v)
{
    int x = (int)(u * sc->tex_w), y = (int)(v * sc->tex_h);
    if (x < 0)
        x = 0;
    if (y < 0)
        y = 0;
    if (x >= sc->tex_w)
        x = sc->tex_w - 1;
    if (y >= sc->tex_h)
        y = sc->tex_h - 1;
    return g_by255[sc->tex[(size_t)y * sc->tex_w + x]];
}

/* The board as a flat rectangle; front face (seen against +z of the board frame) carries the texture. */
static bool intersect_board(const sim_scene *sc, const double bR[9], const double bt[3], const double o[3],
                            const double d[3], double tmax, hit *h)
{
    double n[3] = {bR[2], bR[5], bR[8]};
    double dn = dot3(d, n);
    if (fabs(dn) < 1e-12)
        return false;
    double c[3] = {bt[0] - o[0], bt[1] - o[1], bt[2] - o[2]};
    double t = dot3(c, n) / dn;
    if (t <= 0 || t >= tmax)
        return false;
    double p[3] = {o[0] + t * d[0] - bt[0], o[1] + t * d[1] - bt[1], o[2] + t * d[2] - bt[2]};
    double u = p[0] * bR[0] + p[1] * bR[3] + p[2] * bR[6];
    double v = p[0] * bR[1] + p[1] * bR[4] + p[2] * bR[7];
    if (fabs(u) > sc->board_w / 2 || fabs(v) > sc->board_h / 2)
        return false;
    double g = 0.85;
    if (dn > 0 && sc->tex)
        g = 0.05 + 0.9 * tex_sample(sc, u / sc->board_w + 0.5, v / sc->board_h + 0.5);
    uint8_t rgb[3] = {(uint8_t)(255 * g), (uint8_t)(255 * g), (uint8_t)(255 * g)};
    set_hit(h, t, dn > 0 ? -n[0] : n[0], dn > 0 ? -n[1] : n[1], dn > 0 ? -n[2] : n[2], g, rgb);
    hit_done(h);
    return true;
}

double sim_scene_distance(const sim_scene *sc, const double p[3], uint64_t t_ns)
{
    double best = INFINITY;
    if (sc->room) {
        if (fabs(p[0]) <= sc->room_half[0] && fabs(p[1]) <= sc->room_half[1])
            best = fmin(best, fabs(p[2]));
        for (int axis = 0; axis < 2; axis++)
            best = fmin(best, fabs(sc->room_half[axis] - fabs(p[axis])));
    }
    for (int i = 0; i < sc->object_count; i++) {
        const ks_sim_object *ob = &sc->objects[i];
        if (ob->kind == KS_SIM_SPHERE) {
            double q[3] = {p[0] - ob->a[0], p[1] - ob->a[1], p[2] - ob->a[2]};
            best = fmin(best, fabs(sqrt(dot3(q, q)) - ob->b[0]));
        } else {
            double out2 = 0, inside = -INFINITY;
            for (int k = 0; k < 3; k++) {
                double c = (ob->a[k] + ob->b[k]) / 2, e = (ob->b[k] - ob->a[k]) / 2;
                double q = fabs(p[k] - c) - e;
                if (q > 0)
                    out2 += q * q;
                inside = fmax(inside, q);
            }
            best = fmin(best, out2 > 0 ? sqrt(out2) : fabs(inside));
        }
    }
    if (sc->board) {
        double R[9], t[3];
        sim_board_pose(sc, t_ns, R, t);
        double q[3] = {p[0] - t[0], p[1] - t[1], p[2] - t[2]};
        double u = q[0] * R[0] + q[1] * R[3] + q[2] * R[6];
        double v = q[0] * R[1] + q[1] * R[4] + q[2] * R[7];
        double w = q[0] * R[2] + q[1] * R[5] + q[2] * R[8];
        double du = fmax(0, fabs(u) - sc->board_w / 2), dv = fmax(0, fabs(v) - sc->board_h / 2);
        best = fmin(best, sqrt(du * du + dv * dv + w * w));
    }
    return best;
}

/* ---- per-device renders ---- */

typedef struct sim_cam {
    int w, h;
    ks_intrinsics in;
    double R[9], t[3];   /* camera -> world */
    float *dir;          /* world ray per pixel (3 floats, z-depth scaled: camera z component = 1); NaN invalid */
} sim_cam;

/* One camera's static view: the depth camera's in one depth mode (color_res KS_COLOR_OFF) or the
 * colour camera's at one resolution (depth_mode KS_DEPTH_OFF), never both. */
typedef struct sim_static {
    ks_depth_mode depth_mode;
    ks_color_resolution color_res;
    ks_calibration cal;
    sim_cam dcam, ccam;
    float *dz;           /* static z per depth pixel (mm along the optical axis), 0 = nothing */
    sim_buf *depth, *ir; /* uint16 images of the static scene (board included when it does not move); with
                            the sensor model: masked, range-limited, noise-free */
    /* sensor model (render.sensor): per depth pixel */
    uint8_t *inside;     /* 1 inside the mode's valid-pixel mask (NFOV octagon, WFOV circle) */
    uint8_t *zsig;       /* depth noise standard deviation, 1/4 mm */
    uint8_t *pdrop;      /* probability /256 that a frame loses the pixel (weak or grazing return) */
    uint8_t *irsig;      /* IR noise standard deviation, counts */
    uint32_t *edge;      /* pixels at depth discontinuities (flying pixels) */
    uint16_t *edge_near, *edge_far;
    int edge_n;
    float *cz;           /* static z per colour pixel (a moving board only: where it is in front) */
    sim_buf *bgra;       /* colour at gain 1 */
    bool from_cache;     /* the depth view was read from the view cache: dcam.dir made when first needed */
    pthread_mutex_t rays_mu; /* view_rays */
    struct sim_static *next;
} sim_static;

/* Colour sensor noise: a static scene cycles through this many noisy pictures (each encoded once),
 * so consecutive frames differ while the MJPEG encoder runs only when the picture changes. */
#define SIM_COLOR_VARIANTS 4
#define COLOR_NOISE_DN 2.3         /* standard deviation of the colour sensor noise, 8-bit levels */
#define JPEG_QUALITY 95            /* the device's MJPEG: quality ~95, 4:2:2 (real fixture) */
#define JPEG_SUBSAMP TJSAMP_422

typedef struct sim_mask {
    const sim_static *a, *b;
    uint8_t *bits;
} sim_mask;

struct sim_render_dev {
    pthread_mutex_t build_mu, cache_mu;
    sim_static *list;
    ks_sim_render_stats stats; /* under build_mu, but pair_masks: under cache_mu */
    tjhandle tj;
    /* colour cache: the last encoded picture */
    sim_buf *jpeg[SIM_COLOR_VARIANTS];   /* one per sensor-noise variant */
    const sim_static *jpeg_st[SIM_COLOR_VARIANTS];
    int jpeg_level[SIM_COLOR_VARIANTS];
    uint64_t jpeg_board[SIM_COLOR_VARIANTS];
    sim_buf *bgra_scaled;
    const sim_static *bgra_st;
    int bgra_level;
    uint64_t bgra_board;
    sim_mask masks[KS_RIG_MAX_DEVICES];
};

static sim_render_dev *render_dev(sim_world *w, int i)
{
    sim_dev *d = &w->devs[i];
    pthread_mutex_lock(&w->mu);
    if (!d->render) {
        sim_render_dev *r = calloc(1, sizeof *r);
        if (r) {
            pthread_mutex_init(&r->build_mu, NULL);
            pthread_mutex_init(&r->cache_mu, NULL);
        }
        d->render = r;
    }
    sim_render_dev *r = d->render;
    pthread_mutex_unlock(&w->mu);
    return r;
}

static void static_free_sensor(sim_static *s)
{
    free(s->inside); /* zsig, pdrop and irsig are in the same block */
    free(s->edge);
    free(s->edge_near);
    free(s->edge_far);
}

/* One rendered static view and everything it holds. */
static void static_free(sim_static *s)
{
    pthread_mutex_destroy(&s->rays_mu);
    free(s->dcam.dir);
    free(s->ccam.dir);
    static_free_sensor(s);
    free(s->dz);
    free(s->cz);
    sim_buf_unref(s->depth);
    sim_buf_unref(s->ir);
    sim_buf_unref(s->bgra);
    free(s);
}

void sim_render_free(sim_render_dev *r)
{
    if (!r)
        return;
    while (r->list) {
        sim_static *s = r->list;
        r->list = s->next;
        static_free(s);
    }
    for (int i = 0; i < KS_RIG_MAX_DEVICES; i++)
        free(r->masks[i].bits);
    for (int v = 0; v < SIM_COLOR_VARIANTS; v++)
        sim_buf_unref(r->jpeg[v]);
    sim_buf_unref(r->bgra_scaled);
    if (r->tj)
        tjDestroy(r->tj);
    pthread_mutex_destroy(&r->build_mu);
    pthread_mutex_destroy(&r->cache_mu);
    free(r);
}

/* ---- rows on all CPUs ----
 * fn(ctx, v0, v1) builds rows v0..v1-1 of something; every row is independent of the others, so the
 * result does not depend on how the rows are shared out. The caller's thread works too; the
 * helpers are joined before parallel_rows returns. Rows go out in blocks of 8 from a shared counter
 * (rows that see more of the scene cost more). */
typedef void (*rows_fn)(void *ctx, int v0, int v1);

typedef struct rows_job {
    rows_fn fn;
    void *ctx;
    int rows;
    atomic_int next;
} rows_job;

#define ROWS_BLOCK 8
#define ROWS_MAX_THREADS 8

static void *rows_worker(void *arg)
{
    rows_job *j = arg;
    for (;;) {
        int v0 = atomic_fetch_add(&j->next, ROWS_BLOCK);
        if (v0 >= j->rows)
            break;
        j->fn(j->ctx, v0, v0 + ROWS_BLOCK < j->rows ? v0 + ROWS_BLOCK : j->rows);
    }
    return NULL;
}

static void parallel_rows(int rows, rows_fn fn, void *ctx)
{
    static atomic_int cpus;
    int n = atomic_load(&cpus);
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c < 1 ? 1 : c > ROWS_MAX_THREADS ? ROWS_MAX_THREADS : (int)c;
        atomic_store(&cpus, n);
    }
    if (n > rows / (4 * ROWS_BLOCK))
        n = rows / (4 * ROWS_BLOCK);
    rows_job j = {.fn = fn, .ctx = ctx, .rows = rows};
    atomic_init(&j.next, 0);
    pthread_t th[ROWS_MAX_THREADS];
    int started = 0;
    for (int i = 1; i < n; i++)
        if (pthread_create(&th[started], NULL, rows_worker, &j) == 0)
            started++;
    rows_worker(&j); /* no helper at all (one CPU, or none could start): this thread does every row */
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
}

/* The world ray of every pixel of camera c: the lens model's unprojection (ks_unproject_row gives
 * exactly ks_unproject_ray's result) turned by the camera's pose. */
typedef struct rays_ctx {
    sim_cam *c;
    atomic_bool failed;
} rays_ctx;

/* The world rays of row v of camera c into o (3 floats per pixel, NaN where the lens model has none);
 * x: scratch for 2 x c->w doubles, ok: c->w bytes. */
static void ray_row(const sim_cam *c, int v, double *x, uint8_t *ok, float *o)
{
    double *y = x + c->w;
    const double *R = c->R;
    ks_unproject_row(&c->in, v, 0, c->w, x, y, ok);
    for (int u = 0; u < c->w; u++, o += 3) {
        if (!ok[u]) {
            o[0] = o[1] = o[2] = NAN;
            continue;
        }
        for (int k = 0; k < 3; k++)
            o[k] = (float)(R[k * 3] * x[u] + R[k * 3 + 1] * y[u] + R[k * 3 + 2]);
    }
}

static void rays_rows(void *arg, int v0, int v1)
{
    rays_ctx *rc = arg;
    sim_cam *c = rc->c;
    double *x = malloc((size_t)c->w * 2 * sizeof *x);
    uint8_t *ok = malloc((size_t)c->w);
    if (!x || !ok) {
        atomic_store(&rc->failed, true);
        free(x);
        free(ok);
        return;
    }
    for (int v = v0; v < v1; v++)
        ray_row(c, v, x, ok, c->dir + (size_t)v * c->w * 3);
    free(x);
    free(ok);
}

/* Camera c's rays into c->dir (allocated). */
static bool cam_rays(sim_cam *c)
{
    if (!c->dir)
        c->dir = ks_big_alloc((size_t)c->w * c->h * 3 * sizeof(float));
    if (!c->dir)
        return false;
    rays_ctx rc = {.c = c};
    atomic_init(&rc.failed, false);
    parallel_rows(c->h, rays_rows, &rc);
    return !atomic_load(&rc.failed);
}

static bool cam_init(sim_cam *c, const ks_intrinsics *in, const double R[9], const double t[3], bool rays)
{
    c->in = *in;
    c->w = in->width;
    c->h = in->height;
    memcpy(c->R, R, sizeof c->R);
    memcpy(c->t, t, sizeof c->t);
    return !rays || cam_rays(c); /* without rays (timing-only runs) the images stay black */
}

/* The depth camera's rays of a built view (view->dcam.dir), made now if the view was read from the
 * view cache without them (only a moving board and the laser's pair masks need them after the view
 * is built); false when out of memory. Every reader of dcam.dir after the build calls this first. */
static bool view_rays(const sim_static *view)
{
    sim_static *s = (sim_static *)view; /* the rays are made once, under rays_mu */
    pthread_mutex_lock(&s->rays_mu);
    bool ok = s->dcam.dir || cam_rays(&s->dcam);
    pthread_mutex_unlock(&s->rays_mu);
    return ok;
}

static void shade_color(const hit *h, const double d[3], double *rgb)
{
    (void)d;
    static const double L[3] = {0.30, 0.20, 0.93};
    double lam = fabs(dot3(h->n, L));
    for (int k = 0; k < 3; k++)
        rgb[k] = h->rgb[k] * (0.35 + 0.65 * lam);
}

static uint32_t hash32(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return (uint32_t)x;
}

/* ---- the depth sensor model (render.sensor; docs/simulator.md "Images") ----
 * Active IR is the laser's return: IR_GAIN x reflectivity x cos(incidence) / distance^2 (m), clipped at
 * 65535 (saturation on near or retro-reflective surfaces: albedo > 1). IR_GAIN puts the median of a
 * desk-sized scene at a few hundred counts like the real fixture (median 357, p95 11770, 2.7 %
 * saturated). The depth noise falls with the return signal: sigma = DEPTH_NOISE_K / sqrt(signal)
 * (+ a floor), dropouts rise as the signal nears DROP_SIGNAL or the surface turns grazing. */
#define IR_GAIN 2500.0
#define PASSIVE_IR_LEVEL 150.0
#define DEPTH_NOISE_K 0.80         /* mm at signal 1 (albedo 1, head-on, 1 m) */
#define DEPTH_NOISE_FLOOR 0.50     /* mm */
#define DROP_SIGNAL 0.03          /* signal at which half the frames lose the pixel */
#define GRAZING_COS 0.20           /* incidence below this loses pixels */
#define NEAR_INVALID 0.33          /* nearer than this share of the mode's minimum: saturated, no depth */
#define NOISE_BITS 18
#define NOISE_N (1u << NOISE_BITS)
#define NOISE_MASK (NOISE_N - 1)

static int8_t g_gauss[NOISE_N];   /* N(0,1) x 32, clipped to +-3.9 sigma */
static uint8_t g_unif[NOISE_N];   /* uniform bytes */
static int8_t g_cnoise[NOISE_N];  /* colour noise in 8-bit levels (COLOR_NOISE_DN); every 4th entry 0 (alpha) */
static pthread_once_t g_noise_once = PTHREAD_ONCE_INIT;

static void noise_tables_init(void)
{
    uint64_t st = 0x5eed5eed12345678ull; /* fixed: the tables are part of the model, per-frame offsets are seeded */
    for (uint32_t i = 0; i < NOISE_N; i++) {
        double g = sim_rand_normal(&st) * 32.0;
        g_gauss[i] = (int8_t)(g > 125 ? 125 : g < -125 ? -125 : lround(g));
        g_unif[i] = (uint8_t)(sim_rand_u64(&st) >> 56);
        g_cnoise[i] = (i & 3) == 3 ? 0 : (int8_t)lround(fmax(-100, fmin(100, COLOR_NOISE_DN * g / 32.0)));
    }
}

static double ir_signal(const hit *h, const double d[3], double *cosv)
{
    double len = sqrt(dot3(d, d));
    *cosv = fabs(dot3(h->n, d)) / len;
    double dist_m = h->t * len / 1000.0;
    return h->albedo * *cosv / (dist_m * dist_m + 1e-6);
}

static uint16_t shade_ir(const hit *h, const double d[3], bool passive)
{
    double cosv;
    double sig = ir_signal(h, d, &cosv);
    double v = passive ? PASSIVE_IR_LEVEL * fmin(h->albedo, 1.0) * (0.4 + 0.6 * cosv) : IR_GAIN * sig;
    return (uint16_t)(v > 65535 ? 65535 : v);
}

/* Inside the valid-pixel mask of the mode: NFOV an octagon (the corners of the 640x576 / 320x288 image
 * stay dark, as on the real device: |x| + 0.51 |y| <= 1.045 in half-image units), WFOV the inscribed
 * circle. */
static bool depth_mask_inside(ks_depth_mode dm, int u, int v, int w, int h)
{
    double x = (u + 0.5 - w / 2.0) / (w / 2.0), y = (v + 0.5 - h / 2.0) / (h / 2.0);
    switch (dm) {
    case KS_DEPTH_NFOV_2X2BINNED:
    case KS_DEPTH_NFOV_UNBINNED:
        return fabs(x) + 0.51 * fabs(y) <= 1.045;
    case KS_DEPTH_WFOV_2X2BINNED:
    case KS_DEPTH_WFOV_UNBINNED:
    case KS_DEPTH_PASSIVE_IR:
        return x * x + y * y <= 1.0;
    default:
        return true;
    }
}

/* Sensor parameters of one depth pixel with a hit at z (mm): the depth the device reports without
 * noise (0 outside the range), noise, dropout probability and IR noise. */
static uint16_t sensor_pixel(ks_depth_mode dm, const hit *h, const double d[3], double z, uint16_t ir, uint8_t *zsig,
                             uint8_t *pdrop, uint8_t *irsig)
{
    int zmin = 0, zmax = 0;
    bool ranged = ks_depth_mode_range_mm(dm, &zmin, &zmax);
    double cosv;
    double sig = ir_signal(h, d, &cosv);
    double ns = DEPTH_NOISE_FLOOR + DEPTH_NOISE_K / sqrt(fmax(sig, 1e-6));
    *zsig = (uint8_t)fmin(255, ns * 4);
    double q = sig / DROP_SIGNAL, p = 1.0 / (1.0 + q * q);
    if (cosv < GRAZING_COS)
        p = fmax(p, 1.0 - cosv / GRAZING_COS);
    *pdrop = (uint8_t)fmin(255, p * 256);
    *irsig = (uint8_t)fmin(255, 1.0 + 0.5 * sqrt((double)ir)); /* shot noise */
    /* nothing beyond the range, noise included (the noise tables stop at 3.9 sigma) */
    if (!ranged || z <= 0 || z + 4 * ns > zmax || z < NEAR_INVALID * zmin || ir >= 65535)
        return 0;
    return (uint16_t)llround(z);
}

/* Renders the pixel of camera c; board included when bR != NULL. Returns z (0 if nothing). */
static double trace(const sim_scene *sc, const sim_cam *c, const float *f, const double *bR, const double *bt, hit *h)
{
    if (isnan(f[0]))
        return 0;
    double d[3] = {f[0], f[1], f[2]};
    bool any = intersect_static(sc, c->t, d, h);
    if (bR) {
        hit hb;
        if (intersect_board(sc, bR, bt, c->t, d, any ? h->t : INFINITY, &hb)) {
            *h = hb;
            any = true;
        }
    }
    return any ? h->t : 0;
}

/* Per-frame noise: offsets into the fixed noise tables drawn from the seed, the device and the
 * capture's sequence number, so every frame differs and the same seed repeats it bit for bit. */
typedef struct sensor_offsets {
    uint32_t z, drop, ir, edge;
} sensor_offsets;

static sensor_offsets frame_offsets(uint64_t seed, int device, uint64_t sequence)
{
    uint64_t k = seed * 0x9E3779B97F4A7C15ull ^ ((uint64_t)device << 48) ^ sequence * 0xD1B54A32D192ED03ull;
    sensor_offsets o = {hash32(k), hash32(k + 1), hash32(k + 2), hash32(k + 3)};
    return o;
}

static inline void sensor_one(uint16_t *z, uint16_t *ir, size_t p, uint8_t zsig, uint8_t pdrop, uint8_t irsig,
                              const sensor_offsets *o)
{
    if (*z) {
        if (g_unif[(o->drop + p) & NOISE_MASK] < pdrop) {
            *z = 0;
        } else {
            int v = *z + zsig * g_gauss[(o->z + p) & NOISE_MASK] / 128;
            *z = (uint16_t)(v < 1 ? 1 : v > 65535 ? 65535 : v);
        }
    }
    if (*ir && *ir < 65535) {
        int v = *ir + irsig * g_gauss[(o->ir + p) & NOISE_MASK] / 32;
        *ir = (uint16_t)(v < 0 ? 0 : v > 65534 ? 65534 : v);
    }
}

/* sensor_one over a run of pixels whose table entries are consecutive (unif, gz, gi: the entries of
 * the run's first pixel): no branch and straight reads, in blocks of 64 (a constant trip count GCC
 * vectorizes at -O2). Gives exactly what sensor_one gives pixel by pixel. Reads the static images (z0,
 * ir0), writes the frame's (z, ir): no copy of the static images first. */
static void sensor_run(const uint16_t *restrict z0p, const uint16_t *restrict ir0p, uint16_t *restrict z,
                       uint16_t *restrict ir, const uint8_t *restrict zsig, const uint8_t *restrict pdrop,
                       const uint8_t *restrict irsig, const uint8_t *restrict unif, const int8_t *restrict gz,
                       const int8_t *restrict gi, size_t n)
{
#define SENSOR_PIXEL(p)                                                                                   \
    do {                                                                                                  \
        int z0 = z0p[p], v = z0 + zsig[p] * gz[p] / 128;                                                  \
        v = v < 1 ? 1 : v > 65535 ? 65535 : v;                                                           \
        z[p] = (uint16_t)(((z0 == 0) | (unif[p] < pdrop[p])) ? 0 : v);                                   \
        int i0 = ir0p[p], w = i0 + irsig[p] * gi[p] / 32;                                                 \
        w = w < 0 ? 0 : w > 65534 ? 65534 : w;                                                            \
        ir[p] = (uint16_t)(((i0 == 0) | (i0 == 65535)) ? i0 : w);                                        \
    } while (0)
    size_t j = 0;
    for (; j + 64 <= n; j += 64)
        for (size_t k = j; k < j + 64; k++)
            SENSOR_PIXEL(k);
    for (; j < n; j++)
        SENSOR_PIXEL(j);
#undef SENSOR_PIXEL
}

/* The frame's images dp, ip: the static view's through the sensor model (noise, dropouts, flying pixels). */
static void sensor_frame(const sim_static *st, uint16_t *dp, uint16_t *ip, size_t n, const sensor_offsets *o)
{
    const uint16_t *z0 = (const uint16_t *)st->depth->data, *ir0 = (const uint16_t *)st->ir->data;
    pthread_once(&g_noise_once, noise_tables_init);
    /* in runs over which none of the three table offsets wraps */
    for (size_t p = 0; p < n;) {
        uint32_t kz = (o->z + (uint32_t)p) & NOISE_MASK, kd = (o->drop + (uint32_t)p) & NOISE_MASK,
                 ki = (o->ir + (uint32_t)p) & NOISE_MASK;
        size_t run = n - p;
        if (run > NOISE_N - kz)
            run = NOISE_N - kz;
        if (run > NOISE_N - kd)
            run = NOISE_N - kd;
        if (run > NOISE_N - ki)
            run = NOISE_N - ki;
        sensor_run(z0 + p, ir0 + p, dp + p, ip + p, st->zsig + p, st->pdrop + p, st->irsig + p, g_unif + kd,
                   g_gauss + kz, g_gauss + ki, run);
        p += run;
    }
    for (int e = 0; e < st->edge_n; e++) {
        uint32_t p = st->edge[e];
        if (!dp[p])
            continue;
        unsigned r = g_unif[(o->edge + (uint32_t)e) & NOISE_MASK];
        if (r < 90) {
            dp[p] = 0; /* the depth engine rejects the mixed return */
        } else if (r < 180) {
            unsigned m = g_unif[(o->edge + (uint32_t)e + 7919u) & NOISE_MASK];
            dp[p] = (uint16_t)(st->edge_near[e] + (unsigned)(st->edge_far[e] - st->edge_near[e]) * m / 256u);
        }
    }
}

/* Depth discontinuities (neighbours more than 4 % + 30 mm apart): the pixels on both sides become
 * flying pixels in some frames (mixed returns of the near and the far surface). */
static bool find_edges(sim_static *s)
{
    int w = s->dcam.w, h = s->dcam.h, cap = 0;
    const uint16_t *dp = (const uint16_t *)s->depth->data;
    for (int pass = 0; pass < 2; pass++) {
        int count = 0;
        for (int v = 0; v + 1 < h; v++)
            for (int u = 0; u + 1 < w; u++) {
                size_t p = (size_t)v * w + u;
                uint16_t a = dp[p];
                if (!a)
                    continue;
                size_t nb[2] = {p + 1, p + (size_t)w};
                for (int k = 0; k < 2; k++) {
                    uint16_t b = dp[nb[k]];
                    if (!b)
                        continue;
                    uint16_t lo = a < b ? a : b, hi = a < b ? b : a;
                    if (hi - lo <= 30 + lo / 25)
                        continue;
                    if (pass == 1) {
                        s->edge[count] = (uint32_t)p;
                        s->edge_near[count] = lo;
                        s->edge_far[count] = hi;
                        s->edge[count + 1] = (uint32_t)nb[k];
                        s->edge_near[count + 1] = lo;
                        s->edge_far[count + 1] = hi;
                    }
                    count += 2;
                }
            }
        if (pass == 0) {
            cap = count;
            s->edge = malloc((size_t)(cap + 1) * sizeof *s->edge);
            s->edge_near = malloc((size_t)(cap + 1) * sizeof *s->edge_near);
            s->edge_far = malloc((size_t)(cap + 1) * sizeof *s->edge_far);
            if (!s->edge || !s->edge_near || !s->edge_far)
                return false;
        } else {
            s->edge_n = count;
        }
    }
    return true;
}

/* The static depth view, rows v0..v1-1: depth, IR and the sensor model's per-pixel parameters. */
typedef struct view_ctx {
    const sim_scene *sc;
    sim_static *s;
    const double *bR, *bt; /* the board when it does not move, else NULL */
    bool sensor;
    atomic_bool failed;    /* out of memory in a row */
} view_ctx;

/* One pixel of the static depth view: everything the view holds for it (the sensor model's fields
 * 0 without it). */
typedef struct depth_px {
    float dz;
    uint16_t depth, ir;
    uint8_t inside, zsig, pdrop, irsig;
} depth_px;

/* Pixel p of the static depth view of vc->s, through the ray f. */
static inline depth_px depth_pixel(const view_ctx *vc, const float *f, size_t p)
{
    const sim_static *s = vc->s;
    ks_depth_mode dm = s->depth_mode;
    bool passive = dm == KS_DEPTH_PASSIVE_IR;
    depth_px o = {0};
    hit h;
    double z = trace(vc->sc, &s->dcam, f, vc->bR, vc->bt, &h);
    o.dz = (float)z;
    o.depth = (uint16_t)(z > 0 && z < 65535 ? llround(z) : 0);
    if (z > 0) {
        double d[3] = {f[0], f[1], f[2]};
        o.ir = shade_ir(&h, d, passive);
        if (vc->sensor)
            o.depth = sensor_pixel(dm, &h, d, z, o.ir, &o.zsig, &o.pdrop, &o.irsig);
    }
    if (vc->sensor) {
        o.inside = depth_mask_inside(dm, (int)(p % s->dcam.w), (int)(p / s->dcam.w), s->dcam.w, s->dcam.h);
        if (!o.inside)
            o.depth = o.ir = 0;
        if (passive)
            o.depth = 0;
    }
    return o;
}

static void depth_rows(void *arg, int v0, int v1)
{
    const view_ctx *vc = arg;
    sim_static *s = vc->s;
    uint16_t *dp = (uint16_t *)s->depth->data, *ip = (uint16_t *)s->ir->data;
    for (size_t p = (size_t)v0 * s->dcam.w, end = (size_t)v1 * s->dcam.w; p < end; p++) {
        depth_px o = depth_pixel(vc, s->dcam.dir + p * 3, p);
        s->dz[p] = o.dz;
        dp[p] = o.depth;
        ip[p] = o.ir;
        if (vc->sensor) {
            s->inside[p] = o.inside;
            s->zsig[p] = o.zsig;
            s->pdrop[p] = o.pdrop;
            s->irsig[p] = o.irsig;
        }
    }
}

/* The static colour view, rows v0..v1-1: BGRA at gain 1 and z per pixel. */
static void color_rows(void *arg, int v0, int v1)
{
    view_ctx *vc = arg;
    sim_static *s = vc->s;
    const sim_cam *c = &s->ccam;
    uint8_t *o = s->bgra->data;
    /* without a kept ray table (the board does not move), each row's rays are made here and dropped */
    float *rays = c->dir ? NULL : malloc((size_t)c->w * 3 * sizeof *rays);
    double *x = c->dir ? NULL : malloc((size_t)c->w * 2 * sizeof *x);
    uint8_t *ok = c->dir ? NULL : malloc((size_t)c->w);
    if (!c->dir && (!rays || !x || !ok)) {
        atomic_store(&vc->failed, true);
        v1 = v0;
    }
    for (int v = v0; v < v1; v++) {
        const float *row = c->dir ? c->dir + (size_t)v * c->w * 3 : rays;
        if (!c->dir)
            ray_row(c, v, x, ok, rays);
        for (int u = 0; u < c->w; u++) {
            size_t p = (size_t)v * c->w + (size_t)u;
            const float *f = row + (size_t)u * 3;
            hit h;
            double z = trace(vc->sc, c, f, vc->bR, vc->bt, &h);
            if (s->cz)
                s->cz[p] = (float)z;
            double rgb[3] = {0.02, 0.02, 0.03};
            if (z > 0) {
                double d[3] = {f[0], f[1], f[2]};
                shade_color(&h, d, rgb);
            }
            o[p * 4 + 0] = (uint8_t)(fmin(1, rgb[2]) * 255);
            o[p * 4 + 1] = (uint8_t)(fmin(1, rgb[1]) * 255);
            o[p * 4 + 2] = (uint8_t)(fmin(1, rgb[0]) * 255);
            o[p * 4 + 3] = 255;
        }
    }
    free(rays);
    free(x);
    free(ok);
}

/* ---- the view cache (docs/simulator.md "View cache") ----
 * A static depth view (without its rays) kept on disk between runs (ks_sim_config.view_cache_dir, set
 * by `kinsync fuse`): the lens model's solve and the ray casting of every pixel are the bulk of the
 * simulator's start-up (~14 + ~24 ms of CPU per NFOV unbinned camera), reading the 4.4 MB file back a
 * few ms. The rays are solved only if a moving board or a pair mask needs them (view_rays).
 * The key is everything the view is made from: the depth mode, the sensor model on or off, the
 * depth camera's intrinsics (every field) and pose, the scene (room, objects) and the board when it
 * is part of the static view (size, pose, texture); compared in full (util/cachefile.h: size, magic,
 * version, key, checksum). The code that renders is not in the key: VIEW_CACHE_VERSION names it, and
 * a spot check renders SPOT_ROWS rows spread over the image again (rays and pixels) and wants them
 * bit for bit, so a file made by a renderer that differs is not used (rebuilt and replaced). The
 * directory is kept under a size cap (util/cachefile.h: KINSYNC_CACHE_MAX_MB, least recently used
 * files evicted after a write; a hit refreshes the file's time). */
#define VIEW_CACHE_MAGIC "KSSIMVW\0"
#define VIEW_CACHE_VERSION 1u /* bump when the rays, the ray casting or the sensor model change */
#define SPOT_ROWS 8

typedef struct keybuf {
    uint8_t *b;
    size_t n, cap;
} keybuf;

static void key_put(keybuf *k, const void *p, size_t n)
{
    if (k->n + n <= k->cap)
        memcpy(k->b + k->n, p, n);
    k->n += n;
}

static void key_u32(keybuf *k, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    key_put(k, b, 4);
}

static void key_f64(keybuf *k, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    key_u32(k, (uint32_t)v);
    key_u32(k, (uint32_t)(v >> 32));
}

static void key_f64s(keybuf *k, const double *d, int n)
{
    for (int i = 0; i < n; i++)
        key_f64(k, d[i]);
}

/* The key of the static depth view of vc (k->n: its length; written only up to k->cap). */
static void view_key(const view_ctx *vc, keybuf *k)
{
    const sim_static *s = vc->s;
    const sim_cam *c = &s->dcam;
    const ks_intrinsics *in = &c->in;
    const sim_scene *sc = vc->sc;
    key_u32(k, (uint32_t)s->depth_mode);
    key_u32(k, vc->sensor);
    key_u32(k, (uint32_t)in->model);
    key_u32(k, (uint32_t)in->width);
    key_u32(k, (uint32_t)in->height);
    const double d[15] = {in->cx,   in->cy,   in->fx,   in->fy,   in->k[0], in->k[1], in->k[2],        in->k[3],
                          in->k[4], in->k[5], in->codx, in->cody, in->p1,   in->p2,   in->metric_radius};
    key_f64s(k, d, 15);
    key_f64s(k, c->R, 9);
    key_f64s(k, c->t, 3);
    key_u32(k, sc->room);
    key_f64s(k, sc->room_half, 2);
    key_f64(k, sc->room_height);
    key_u32(k, (uint32_t)sc->object_count);
    for (int i = 0; i < sc->object_count; i++) {
        const ks_sim_object *ob = &sc->objects[i];
        key_u32(k, (uint32_t)ob->kind);
        key_f64s(k, ob->a, 3);
        key_f64s(k, ob->b, 3);
        key_f64(k, ob->albedo);
        key_put(k, ob->rgb, 3);
    }
    key_u32(k, vc->bR != NULL); /* the board is part of the static view */
    if (vc->bR) {
        key_f64(k, sc->board_w);
        key_f64(k, sc->board_h);
        key_f64s(k, vc->bR, 9);
        key_f64s(k, vc->bt, 3);
        key_u32(k, sc->tex != NULL);
        if (sc->tex) {
            key_u32(k, (uint32_t)sc->tex_w);
            key_u32(k, (uint32_t)sc->tex_h);
            ks_cache_plane tp = {sc->tex, (size_t)sc->tex_w * (size_t)sc->tex_h};
            uint64_t th = ks_cache_checksum(&tp, 1);
            key_u32(k, (uint32_t)th);
            key_u32(k, (uint32_t)(th >> 32));
        }
    }
}

/* The planes of a depth view in the file: z, depth, IR, and the sensor model's per pixel (not the
 * rays: they are half the bytes and needed only by a moving board and the laser's pair masks). */
static int view_planes(const sim_static *s, bool sensor, ks_cache_plane pl[8])
{
    size_t n = (size_t)s->dcam.w * s->dcam.h;
    int k = 0;
    pl[k++] = (ks_cache_plane){s->dz, n * sizeof(float)};
    pl[k++] = (ks_cache_plane){s->depth->data, n * 2};
    pl[k++] = (ks_cache_plane){s->ir->data, n * 2};
    if (sensor) {
        pl[k++] = (ks_cache_plane){s->inside, n};
        pl[k++] = (ks_cache_plane){s->zsig, n};
        pl[k++] = (ks_cache_plane){s->pdrop, n};
        pl[k++] = (ks_cache_plane){s->irsig, n};
    }
    return k;
}

/* SPOT_ROWS rows spread over the image rendered again (rays through the lens model, pixels through
 * the scene and the sensor model) equal the view's, bit for bit. */
static bool view_spot_check(const view_ctx *vc)
{
    const sim_static *s = vc->s;
    const sim_cam *c = &s->dcam;
    double *x = malloc((size_t)c->w * 2 * sizeof *x);
    uint8_t *okb = malloc((size_t)c->w);
    float *row = malloc((size_t)c->w * 3 * sizeof *row);
    bool ok = x && okb && row;
    const uint16_t *dp = (const uint16_t *)s->depth->data, *ip = (const uint16_t *)s->ir->data;
    for (int r = 0; ok && r < SPOT_ROWS; r++) {
        int v = (int)((double)(c->h - 1) * (r + 0.5) / SPOT_ROWS);
        ray_row(c, v, x, okb, row);
        for (int u = 0; ok && u < c->w; u++) {
            size_t p = (size_t)v * c->w + (size_t)u;
            depth_px o = depth_pixel(vc, row + (size_t)u * 3, p);
            ok = !memcmp(&o.dz, &s->dz[p], sizeof o.dz) && o.depth == dp[p] && o.ir == ip[p];
            if (ok && vc->sensor)
                ok = o.inside == s->inside[p] && o.zsig == s->zsig[p] && o.pdrop == s->pdrop[p] &&
                     o.irsig == s->irsig[p];
        }
    }
    free(x);
    free(okb);
    free(row);
    return ok;
}

/* The cache file's path for the view of vc in dir (false if it does not fit). */
static bool view_cache_path(const char *dir, const view_ctx *vc, const keybuf *k, char *path, size_t size)
{
    /* util/cachefile.h's name: the directory's size cap counts it */
    return ks_cache_path(path, size, dir, "simview", VIEW_CACHE_VERSION, vc->s->dcam.w, vc->s->dcam.h,
                         ks_cache_fnv1a(k->b, k->n, KS_CACHE_FNV_SEED));
}

/* The depth view of vc (its buffers allocated) read from the cache in dir: true when the file was
 * usable and passed the spot check. */
static bool view_cache_load(const char *dir, const view_ctx *vc, const keybuf *k)
{
    char path[1200];
    ks_cache_plane pl[8];
    int np = view_planes(vc->s, vc->sensor, pl);
    return view_cache_path(dir, vc, k, path, sizeof path) &&
           ks_cache_file_read(path, VIEW_CACHE_MAGIC, VIEW_CACHE_VERSION, k->b, k->n, pl, np) && view_spot_check(vc);
}

static void view_cache_store(const char *dir, const view_ctx *vc, const keybuf *k)
{
    char path[1200];
    ks_cache_plane pl[8];
    int np = view_planes(vc->s, vc->sensor, pl);
    if (view_cache_path(dir, vc, k, path, sizeof path))
        (void)ks_cache_file_write(dir, path, VIEW_CACHE_MAGIC, VIEW_CACHE_VERSION, k->b, k->n, pl, np);
}

/* The static depth view of vc->s, rows rendered or read from the cache; its buffers allocated. */
static bool depth_view(const sim_world *w, view_ctx *vc)
{
    sim_static *s = vc->s;
    const char *dir = w->cfg.view_cache_dir;
    uint8_t kb[4096];
    keybuf k = {kb, 0, sizeof kb};
    if (dir[0])
        view_key(vc, &k);
    bool cache = dir[0] && k.n <= k.cap;
    if (cache && view_cache_load(dir, vc, &k)) {
        s->from_cache = true;
        return true;
    }
    if (!cam_rays(&s->dcam))
        return false;
    parallel_rows(s->dcam.h, depth_rows, vc);
    if (cache)
        view_cache_store(dir, vc, &k);
    return true;
}

/* Device i's static view of one camera: the depth camera in mode dm (cr KS_COLOR_OFF) or the colour
 * camera at resolution cr (dm KS_DEPTH_OFF). */
static sim_static *build_static(sim_world *w, int i, ks_depth_mode dm, ks_color_resolution cr, ks_error *err)
{
    sim_dev *dv = &w->devs[i];
    sim_static *s = calloc(1, sizeof *s);
    if (!s) {
        ks_error_set(err, KS_ENOMEM, "out of memory rendering device %d", i);
        return NULL;
    }
    s->depth_mode = dm;
    s->color_res = cr;
    pthread_mutex_init(&s->rays_mu, NULL);
    if (ks_calibration_from_json(dv->calib_json, strlen(dv->calib_json), dm, cr, &s->cal, err) != KS_OK) {
        pthread_mutex_destroy(&s->rays_mu);
        free(s);
        return NULL;
    }
    const sim_scene *sc = &w->scene;
    double bR[9], bt[3];
    bool bstatic = sc->board && !board_moves(sc);
    if (sc->board)
        sim_board_pose(sc, 0, bR, bt);
    view_ctx vc = {.sc = sc, .s = s, .bR = bstatic ? bR : NULL, .bt = bt};
    atomic_init(&vc.failed, false);
    bool ok = true;
    if (dm != KS_DEPTH_OFF) {
        ok = cam_init(&s->dcam, &s->cal.depth, dv->pose_R, dv->pose_t, false); /* rays: depth_view */
        size_t n = (size_t)s->dcam.w * s->dcam.h;
        /* util/bigmem.h: fresh pages cost on a VM. Rendered or read, every pixel is written: zeroed
         * only when nothing is rendered (black images) */
        void *(*alloc)(size_t) = w->cfg.render_depth ? ks_big_alloc : ks_big_calloc;
        s->dz = alloc(n * sizeof(float));
        s->depth = sim_buf_new(n * 2);
        s->ir = sim_buf_new(n * 2);
        ok = ok && s->dz && s->depth && s->ir;
        vc.sensor = w->cfg.sensor && w->cfg.render_depth;
        if (ok && vc.sensor) { /* one block: 2 MB pages for 4 x 360 KB (NFOV unbinned) */
            s->inside = ks_big_alloc(4 * n);
            ok = s->inside != NULL;
            if (ok) {
                s->zsig = s->inside + n;
                s->pdrop = s->inside + 2 * n;
                s->irsig = s->inside + 3 * n;
            }
        }
        if (ok && w->cfg.render_depth) { /* otherwise the zeroed buffers stand: black images */
            ok = depth_view(w, &vc);
            if (ok && vc.sensor && dm != KS_DEPTH_PASSIVE_IR)
                ok = find_edges(s);
        }
    }
    if (ok && cr != KS_COLOR_OFF) {
        ks_extrinsics d2w, c2w;
        memcpy(d2w.R, dv->pose_R, sizeof d2w.R);
        memcpy(d2w.t, dv->pose_t, sizeof d2w.t);
        /* where the color camera sits: with depth off the mode-specific calibration zeroes the
         * extrinsics to and from the depth camera (as the SDK does), the hardware keeps them (the same
         * in every depth mode) */
        ks_calibration geo = s->cal;
        if (dm == KS_DEPTH_OFF)
            ok = ks_calibration_from_json(dv->calib_json, strlen(dv->calib_json), KS_DEPTH_NFOV_UNBINNED, cr, &geo,
                                          err) == KS_OK;
        ks_extrinsics_compose(&geo.color_to_depth, &d2w, &c2w);
        /* the colour rays are kept only for a moving board (redrawn per frame); a static scene needs
         * them once, row by row, while its view is rendered */
        ok = ok && cam_init(&s->ccam, &s->cal.color, c2w.R, c2w.t, w->cfg.render_color && board_moves(sc));
        size_t n = (size_t)s->ccam.w * s->ccam.h;
        s->cz = board_moves(sc) ? ks_big_calloc(n * sizeof(float)) : NULL;
        s->bgra = sim_buf_new(n * 4);
        ok = ok && (s->cz || !board_moves(sc)) && s->bgra;
        if (ok && w->cfg.render_color) {
            parallel_rows(s->ccam.h, color_rows, &vc);
            ok = !atomic_load(&vc.failed);
        }
    }
    if (!ok) {
        ks_error_set(err, KS_ENOMEM, "out of memory rendering device %d", i);
        static_free(s);
        return NULL;
    }
    return s;
}

/* Device i's static view of one camera (built on first use): the depth camera's in mode dm when cr
 * is KS_COLOR_OFF, the colour camera's at cr when dm is KS_DEPTH_OFF. */
static const sim_static *get_view(sim_world *w, int i, ks_depth_mode dm, ks_color_resolution cr, ks_error *err)
{
    sim_render_dev *r = render_dev(w, i);
    if (!r) {
        ks_error_set(err, KS_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&r->build_mu);
    sim_static *s = r->list;
    while (s && !(s->depth_mode == dm && s->color_res == cr))
        s = s->next;
    if (!s) {
        s = build_static(w, i, dm, cr, err);
        if (s) {
            s->next = r->list;
            r->list = s;
            if (dm != KS_DEPTH_OFF) {
                r->stats.depth_views++;
                r->stats.ray_tables += s->dcam.dir != NULL && !s->from_cache;
                r->stats.views_from_cache += s->from_cache;
            } else {
                r->stats.color_views++;
                r->stats.ray_tables += w->cfg.render_color; /* kept (moving board) or made row by row */
            }
        }
    }
    pthread_mutex_unlock(&r->build_mu);
    return s;
}

/* Device i's static depth view in mode dm (masks, laser checks). */
static const sim_static *get_static_depth(sim_world *w, int i, ks_depth_mode dm)
{
    return get_view(w, i, dm, KS_COLOR_OFF, NULL);
}

ks_status ks_sim_render_stats_get(ks_sim *s, int device, ks_sim_render_stats *out, ks_error *err)
{
    sim_world *w = (sim_world *)s;
    if (!w || !out)
        return ks_error_set(err, KS_EINVAL, "no simulator or no output given");
    memset(out, 0, sizeof *out);
    if (device < 0 || device >= w->rig.device_count)
        return ks_error_set(err, KS_EINVAL, "device %d is not a device of the simulated rig (0..%d)", device,
                            w->rig.device_count - 1);
    sim_render_dev *r = render_dev(w, device);
    if (!r)
        return ks_error_set(err, KS_ENOMEM, "out of memory");
    pthread_mutex_lock(&r->build_mu);
    *out = r->stats;
    pthread_mutex_unlock(&r->build_mu);
    pthread_mutex_lock(&r->cache_mu);
    out->pair_masks = r->stats.pair_masks;
    pthread_mutex_unlock(&r->cache_mu);
    return KS_OK;
}

/* Bounding box of the board's outline projected through camera c's lens model (points along the
 * four edges), plus a few pixels; false when the board is not in view. A board crossing the plane
 * of the camera or the lens model's valid radius gives the whole image (rare, still correct). */
static bool board_bbox(const sim_scene *sc, const sim_cam *c, const double bR[9], const double bt[3], int box[4])
{
    enum { STEPS = 24 };
    double umin = INFINITY, vmin = INFINITY, umax = -INFINITY, vmax = -INFINITY;
    int behind = 0, invalid = 0, total = 0;
    for (int e = 0; e < 4; e++)
        for (int k = 0; k < STEPS; k++) {
            double s = (double)k / STEPS - 0.5;
            double lu, lv;
            switch (e) {
            case 0: lu = s; lv = -0.5; break;
            case 1: lu = 0.5; lv = s; break;
            case 2: lu = -s; lv = 0.5; break;
            default: lu = -0.5; lv = -s; break;
            }
            lu *= sc->board_w;
            lv *= sc->board_h;
            double q[3], pc[3], uv[2];
            for (int m = 0; m < 3; m++)
                q[m] = bt[m] + bR[m * 3] * lu + bR[m * 3 + 1] * lv - c->t[m];
            for (int m = 0; m < 3; m++)
                pc[m] = c->R[m] * q[0] + c->R[3 + m] * q[1] + c->R[6 + m] * q[2];
            total++;
            if (pc[2] <= 1) {
                behind++;
                continue;
            }
            if (!ks_project(&c->in, pc, uv)) {
                invalid++;
                continue;
            }
            umin = fmin(umin, uv[0]);
            umax = fmax(umax, uv[0]);
            vmin = fmin(vmin, uv[1]);
            vmax = fmax(vmax, uv[1]);
        }
    if (behind == total)
        return false;
    if (behind > 0 || invalid > 0) {
        box[0] = 0;
        box[1] = 0;
        box[2] = c->w - 1;
        box[3] = c->h - 1;
        return true;
    }
    const double m = 4; /* pixels: the outline between samples bulges by far less under the lens model */
    box[0] = (int)fmax(0, floor(umin - m));
    box[1] = (int)fmax(0, floor(vmin - m));
    box[2] = (int)fmin(c->w - 1, ceil(umax + m));
    box[3] = (int)fmin(c->h - 1, ceil(vmax + m));
    return box[0] <= box[2] && box[1] <= box[3];
}

/* The moving board's pixels in camera c: fn(ctx, p, hit, ray) for every pixel p of the board's
 * projected bounding box whose ray meets the board in front of the static scene (static_z: the
 * static z per pixel, 0 where the ray hits nothing). One loop for the depth and the colour images. */
typedef void (*board_pixel_fn)(void *ctx, size_t p, const hit *h, const double d[3]);

static void for_board_pixels(const sim_scene *sc, const sim_cam *c, const float *static_z, const double bR[9],
                             const double bt[3], board_pixel_fn fn, void *ctx)
{
    int box[4];
    if (!c->dir || !board_bbox(sc, c, bR, bt, box))
        return;
    for (int v = box[1]; v <= box[3]; v++)
        for (int u = box[0]; u <= box[2]; u++) {
            size_t p = (size_t)v * c->w + u;
            const float *fd = c->dir + p * 3;
            if (isnan(fd[0]))
                continue;
            double dd[3] = {fd[0], fd[1], fd[2]};
            hit h;
            double zs = static_z[p];
            if (intersect_board(sc, bR, bt, c->t, dd, zs > 0 ? zs : INFINITY, &h))
                fn(ctx, p, &h, dd);
        }
}

typedef struct mask_ctx {
    const sim_static *sa, *sb;
    uint8_t *bits;
    atomic_bool failed; /* out of memory in a row */
} mask_ctx;

static void mask_rows(void *arg, int v0, int v1)
{
    mask_ctx *mc = arg;
    const sim_static *sa = mc->sa, *sb = mc->sb;
    const sim_cam *cb = &sb->dcam;
    int w = sa->dcam.w;
    /* per row: A's points in B's camera frame (those in front of B), projected together */
    double *buf = malloc((size_t)w * 5 * sizeof *buf);
    int *idx = malloc((size_t)w * sizeof *idx);
    uint8_t *ok = malloc((size_t)w);
    if (!buf || !idx || !ok) {
        atomic_store(&mc->failed, true);
        v1 = v0;
    }
    double *QX = buf, *QY = QX + w, *QZ = QY + w, *U = QZ + w, *V = U + w;
    for (int row = v0; row < v1; row++) {
        int m = 0;
        for (size_t p = (size_t)row * w, end = p + (size_t)w; p < end; p++) {
            double z = sa->dz[p];
            if (z <= 0)
                continue;
            const float *f = sa->dcam.dir + p * 3;
            double X[3] = {sa->dcam.t[0] + z * f[0], sa->dcam.t[1] + z * f[1], sa->dcam.t[2] + z * f[2]};
            double q[3] = {X[0] - cb->t[0], X[1] - cb->t[1], X[2] - cb->t[2]}, Q[3];
            for (int k = 0; k < 3; k++)
                Q[k] = cb->R[k] * q[0] + cb->R[3 + k] * q[1] + cb->R[6 + k] * q[2];
            if (Q[2] <= 0)
                continue;
            QX[m] = Q[0];
            QY[m] = Q[1];
            QZ[m] = Q[2];
            idx[m++] = (int)(p - (size_t)row * w);
        }
        ks_project_many(&cb->in, m, QX, QY, QZ, U, V, ok);
        for (int i = 0; i < m; i++) {
            if (!ok[i])
                continue;
            int u = (int)lround(U[i]), v = (int)lround(V[i]);
            if (u < 0 || v < 0 || u >= cb->w || v >= cb->h)
                continue;
            double zb = sb->dz[(size_t)v * cb->w + u];
            if (zb > 0 && fabs(zb - QZ[i]) < 0.02 * QZ[i] + 10)
                mc->bits[(size_t)row * w + (size_t)idx[i]] = 1;
        }
    }
    free(buf);
    free(idx);
    free(ok);
}

/* Pixels of A (static depth view sa) that B's emitter (static depth view sb) lights; rows on all CPUs. */
static const uint8_t *pair_mask(sim_render_dev *ra, int b, const sim_static *sa, const sim_static *sb)
{
    sim_mask *m = &ra->masks[b];
    if (m->bits && m->a == sa && m->b == sb)
        return m->bits;
    free(m->bits);
    m->bits = NULL;
    size_t n = (size_t)sa->dcam.w * sa->dcam.h;
    uint8_t *bits = ks_big_calloc(n);
    if (!bits)
        return NULL;
    mask_ctx mc = {.sa = sa, .sb = sb, .bits = bits};
    atomic_init(&mc.failed, false);
    if (!view_rays(sa)) {
        free(bits);
        return NULL;
    }
    parallel_rows(sa->dcam.h, mask_rows, &mc);
    if (atomic_load(&mc.failed)) {
        free(bits);
        return NULL;
    }
    ra->stats.pair_masks++;
    m->bits = bits;
    m->a = sa;
    m->b = sb;
    return bits;
}

/* out = saturate(in + t), in blocks of 64 with a constant inner trip count (GCC vectorizes that at -O2). */
static void color_add_noise(const uint8_t *restrict in, uint8_t *restrict out, const int8_t *restrict t, size_t n)
{
    size_t j = 0;
    for (; j + 64 <= n; j += 64)
        for (int k = 0; k < 64; k++) {
            int v = in[j + k] + t[j + k];
            out[j + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    for (; j < n; j++) {
        int v = in[j] + t[j];
        out[j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* The per-byte factors of BGRA brightness x level / 16 over a block of 64 bytes (alpha x 16: kept);
 * level 1..255. */
static void scale_factors(uint8_t fac[64], int level)
{
    for (int k = 0; k < 64; k++)
        fac[k] = (uint8_t)((k & 3) == 3 ? 16 : level);
}

/* BGRA brightness x level / 16 (alpha kept), in blocks of 64 with the factors read straight (GCC
 * vectorizes that at -O2; n is a multiple of 4). */
static void color_scale(uint8_t *restrict pd, size_t n, int level)
{
    uint8_t fac[64];
    scale_factors(fac, level);
    size_t q = 0;
    for (; q + 64 <= n; q += 64)
        for (int k = 0; k < 64; k++) {
            unsigned x = ((unsigned)pd[q + k] * fac[k]) >> 4;
            pd[q + k] = (uint8_t)(x > 255 ? 255 : x);
        }
    for (; q < n; q++) {
        unsigned x = ((unsigned)pd[q] * fac[q & 3]) >> 4;
        pd[q] = (uint8_t)(x > 255 ? 255 : x);
    }
}

/* out = saturate(saturate(in x level / 16) + t): color_scale and the noise in one pass (n a multiple
 * of 4, in and out 4-aligned in the picture so alpha stays at k & 3 == 3). The 16-bit types let GCC
 * keep 8 or 16 bytes per vector lane group (3 instructions per byte instead of 13 with int). */
static void color_scale_add_noise(const uint8_t *restrict in, uint8_t *restrict out, const int8_t *restrict t,
                                  size_t n, const uint8_t fac[64])
{
    size_t j = 0;
    for (; j + 64 <= n; j += 64)
        for (int k = 0; k < 64; k++) {
            uint16_t x = (uint16_t)((in[j + k] * fac[k]) >> 4);
            x = x > 255 ? 255 : x;
            int16_t v = (int16_t)(x + t[j + k]);
            v = v < 0 ? 0 : v;
            v = v > 255 ? 255 : v;
            out[j + k] = (uint8_t)v;
        }
    for (; j < n; j++) {
        unsigned x = ((unsigned)in[j] * fac[j & 3]) >> 4;
        int v = (int)(x > 255 ? 255 : x) + t[j];
        out[j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* Start of the colour noise of (seed, device, variant) in g_cnoise: byte i of a picture takes
 * g_cnoise[(start + i) & NOISE_MASK] (start a multiple of 4: alpha falls on the table's zeros). */
static uint32_t color_noise_start(uint64_t seed, int device, uint64_t variant)
{
    sensor_offsets o = frame_offsets(seed ^ 0xC0105ull, device, variant);
    return o.z & NOISE_MASK & ~3u;
}

/* A copy of the picture with the colour sensor's noise (per channel, from a table of pre-scaled noise
 * read at an offset hashed from the seed, the device and the variant; alpha untouched). Straight
 * runs over the table so the compiler vectorizes the saturating add. */
static sim_buf *color_noisy(const sim_buf *pic, uint64_t seed, int device, uint64_t variant)
{
    pthread_once(&g_noise_once, noise_tables_init);
    sim_buf *b = sim_buf_new_uninit(pic->size);
    if (!b)
        return NULL;
    const uint8_t *in = pic->data;
    uint8_t *out = b->data;
    size_t i = 0;
    uint32_t k = color_noise_start(seed, device, variant);
    while (i < pic->size) {
        size_t run = NOISE_N - k;
        if (run > pic->size - i)
            run = pic->size - i;
        color_add_noise(in + i, out + i, g_cnoise + k, run);
        i += run;
        k = 0;
    }
    return b;
}

/* Redraws the moving board over a BGRA picture of camera c (its pixels in front of the static scene),
 * scaled by level / 16 and, when noise_start >= 0, with the colour noise that starts there in g_cnoise:
 * the bytes color_noisy(color_scale(picture with the board)) gives, for the board's pixels only. */
typedef struct board_color_ctx {
    uint8_t *pic;
    int level;
    int64_t noise_start;
} board_color_ctx;

static void board_color_pixel(void *arg, size_t p, const hit *h, const double dd[3])
{
    const board_color_ctx *bc = arg;
    double rgb[3];
    shade_color(h, dd, rgb);
    uint8_t *o = bc->pic + p * 4;
    for (int k = 0; k < 3; k++) {
        double x = rgb[2 - k];
        unsigned b = (unsigned)((x < 1 ? x : 1) * 255);
        if (bc->level != 16) {
            b = (b * (unsigned)bc->level) >> 4;
            b = b > 255 ? 255 : b;
        }
        if (bc->noise_start >= 0) {
            int nz = (int)b + g_cnoise[((uint64_t)bc->noise_start + p * 4 + (size_t)k) & NOISE_MASK];
            b = (unsigned)(nz < 0 ? 0 : nz > 255 ? 255 : nz);
        }
        o[k] = (uint8_t)b;
    }
}

static void draw_board_color(const sim_scene *sc, const sim_cam *c, const float *cz, const double bR[9],
                             const double bt[3], uint8_t *pic, int level, int64_t noise_start)
{
    board_color_ctx bc = {pic, level, noise_start};
    for_board_pixels(sc, c, cz, bR, bt, board_color_pixel, &bc);
}

static ks_status encode_jpeg(sim_render_dev *r, const uint8_t *bgra, int w, int h, sim_buf **out, ks_error *err)
{
    if (!r->tj && !(r->tj = tjInitCompress()))
        return ks_error_set(err, KS_ENOMEM, "libturbojpeg could not start a compressor");
    unsigned long cap = tjBufSize(w, h, JPEG_SUBSAMP);
    sim_buf *b = sim_buf_new_uninit(cap);
    if (!b)
        return ks_error_set(err, KS_ENOMEM, "out of memory for an MJPEG frame");
    unsigned char *dst = b->data;
    unsigned long size = cap;
    if (tjCompress2(r->tj, bgra, w, w * 4, h, TJPF_BGRA, &dst, &size, JPEG_SUBSAMP, JPEG_QUALITY,
                    TJFLAG_NOREALLOC) != 0) {
        sim_buf_unref(b);
        return ks_error_set(err, KS_EIO, "MJPEG encoding failed: %s", tjGetErrorStr2(r->tj));
    }
    b->size = size;
    *out = b;
    return KS_OK;
}

static void to_yuv(const uint8_t *p, double *y, double *u, double *v)
{
    double B = p[0], G = p[1], R = p[2];
    *y = 0.299 * R + 0.587 * G + 0.114 * B;
    *u = 128 - 0.168736 * R - 0.331264 * G + 0.5 * B;
    *v = 128 + 0.5 * R - 0.418688 * G - 0.081312 * B;
}

static uint8_t clamp8(double x)
{
    return (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x + 0.5);
}

static ks_image *convert_color(const uint8_t *bgra, int w, int h, ks_image_format fmt)
{
    if (fmt == KS_FORMAT_NV12) {
        ks_image *img = ks_image_create(fmt, w, h, w, (size_t)w * h * 3 / 2);
        if (!img)
            return NULL;
        /* ks_image_create sized it for stride*height; NV12 needs the chroma plane too */
        free(img->data);
        img->size = (size_t)w * h * 3 / 2;
        img->data = malloc(img->size);
        if (!img->data) {
            img->size = 0;
            ks_image_release(img);
            return NULL;
        }
        uint8_t *Y = img->data, *UV = img->data + (size_t)w * h;
        for (int yy = 0; yy < h; yy++)
            for (int xx = 0; xx < w; xx++) {
                double y, u, v;
                to_yuv(bgra + ((size_t)yy * w + xx) * 4, &y, &u, &v);
                Y[(size_t)yy * w + xx] = clamp8(y);
                if (!(yy & 1) && !(xx & 1)) {
                    UV[(size_t)(yy / 2) * w + xx] = clamp8(u);
                    UV[(size_t)(yy / 2) * w + xx + 1] = clamp8(v);
                }
            }
        return img;
    }
    ks_image *img = ks_image_create(fmt, w, h, w * 2, 0);
    if (!img)
        return NULL;
    for (int yy = 0; yy < h; yy++)
        for (int xx = 0; xx < w; xx += 2) {
            double y0, u0, v0, y1, u1, v1;
            to_yuv(bgra + ((size_t)yy * w + xx) * 4, &y0, &u0, &v0);
            to_yuv(bgra + ((size_t)yy * w + xx + 1) * 4, &y1, &u1, &v1);
            uint8_t *o = img->data + (size_t)yy * w * 2 + (size_t)xx * 2;
            o[0] = clamp8(y0);
            o[1] = clamp8((u0 + u1) / 2);
            o[2] = clamp8(y1);
            o[3] = clamp8((v0 + v1) / 2);
        }
    return img;
}

/* A depth and IR pixel of the moving board, through the sensor model when it is on. */
typedef struct board_depth_ctx {
    const sim_static *st;
    uint16_t *dp, *ip;
    bool passive, sensor;
    const sensor_offsets *so;
} board_depth_ctx;

static void board_depth_pixel(void *arg, size_t p, const hit *h, const double dd[3])
{
    const board_depth_ctx *bd = arg;
    uint16_t *dp = bd->dp, *ip = bd->ip;
    dp[p] = (uint16_t)(h->t < 65535 ? llround(h->t) : 0);
    ip[p] = shade_ir(h, dd, bd->passive);
    if (bd->sensor) {
        const sim_static *st = bd->st;
        uint8_t zsig, pdrop, irsig;
        dp[p] = sensor_pixel(st->depth_mode, h, dd, h->t, ip[p], &zsig, &pdrop, &irsig);
        if (!st->inside[p] || bd->passive)
            dp[p] = 0;
        if (!st->inside[p])
            ip[p] = 0;
        sensor_one(&dp[p], &ip[p], p, zsig, pdrop, irsig, bd->so);
    }
}

/* A colour image's timestamps and camera settings (rendered or header-only alike), into the capture. */
static void stamp_color(ks_image *img, const sim_frame *f, ks_capture *cap)
{
    img->device_ts_us = f->color_ts_us;
    img->system_ts_ns = f->system_ts_ns;
    img->exposure_us = f->truth.color_exposure_us;
    img->white_balance = 4500;
    img->iso_speed = 100;
    cap->color = img;
}

ks_status sim_render_capture(sim_world *w, sim_frame *f, ks_capture *cap, ks_error *err)
{
    sim_dev *d = &w->devs[f->device];
    (void)d;
    ks_depth_mode dm = f->depth_mode;
    ks_color_resolution cr = f->color_res;
    ks_image_format cf = f->color_format;
    /* the colour and the depth camera's static views (each built on first use) */
    const sim_static *cst = NULL, *dst = NULL;
    /* a colour stream the host does not read (ks_device_set_streams) is not rendered: header-only */
    bool want_color = !f->streams || (f->streams & KS_STREAM_COLOR);
    if (f->has_color && cr != KS_COLOR_OFF && want_color && !(cst = get_view(w, f->device, KS_DEPTH_OFF, cr, err)))
        return err ? err->code : KS_ENOMEM;
    if ((f->has_depth || f->has_ir) && dm != KS_DEPTH_OFF && !(dst = get_view(w, f->device, dm, KS_COLOR_OFF, err)))
        return err ? err->code : KS_ENOMEM;
    sim_render_dev *r = render_dev(w, f->device);
    const sim_scene *sc = &w->scene;
    bool moving = board_moves(sc);
    uint64_t board_t = f->truth.sync_ns;
    double bR[9], bt[3];
    if (moving)
        sim_board_pose(sc, board_t, bR, bt);
    uint64_t board_key = moving ? board_t / 1000000 + 1 : 0; /* 1 ms resolution */
    ks_status status = KS_OK;
    pthread_mutex_lock(&r->cache_mu);

    if (f->has_color && cr != KS_COLOR_OFF && !want_color) {
        const ks_color_resolution_info *ci = ks_color_resolution_get(cr);
        ks_image *img = ci ? ks_image_wrap(cf, ci->width, ci->height, 0, NULL, 0, NULL, NULL) : NULL;
        if (!img) {
            status = ks_error_set(err, KS_ENOMEM, "out of memory for a colour image");
            goto out;
        }
        stamp_color(img, f, cap);
    } else if (f->has_color && cr != KS_COLOR_OFF) {
        const sim_cam *c = &cst->ccam;
        int level = (int)lround(f->gain * 16.0);
        if (level < 1)
            level = 1;
        if (level > 255)
            level = 255; /* 16x nominal brightness: every pixel that is not black is white by then */
        if (!w->cfg.render_color)
            level = 16;
        ks_image *img = NULL;
        bool cnoise = w->cfg.sensor && w->cfg.render_color;
        int nv = cnoise ? (int)(f->truth.sequence % SIM_COLOR_VARIANTS) : 0;
        if (cf == KS_FORMAT_MJPG && cnoise) {
            /* the static picture scaled and noised in one pass (no scaled copy kept: each noise variant
             * is encoded once), then a moving board redrawn over it */
            if (!(r->jpeg[nv] && r->jpeg_st[nv] == cst && r->jpeg_level[nv] == level &&
                  r->jpeg_board[nv] == board_key)) {
                sim_buf *src = sim_buf_new_uninit(cst->bgra->size), *j = NULL;
                if (!src) {
                    status = ks_error_set(err, KS_ENOMEM, "out of memory rendering colour");
                    goto out;
                }
                pthread_once(&g_noise_once, noise_tables_init);
                uint8_t fac[64];
                scale_factors(fac, level);
                uint32_t k0 = color_noise_start(w->cfg.seed, f->device, (uint64_t)nv);
                for (size_t i = 0, k = k0; i < cst->bgra->size; k = 0) { /* runs up to the table's end */
                    size_t run = NOISE_N - k;
                    if (run > cst->bgra->size - i)
                        run = cst->bgra->size - i;
                    color_scale_add_noise(cst->bgra->data + i, src->data + i, g_cnoise + k, run, fac);
                    i += run;
                }
                if (moving)
                    draw_board_color(sc, c, cst->cz, bR, bt, src->data, level, (int64_t)k0);
                status = encode_jpeg(r, src->data, c->w, c->h, &j, err);
                sim_buf_unref(src);
                if (status != KS_OK)
                    goto out;
                sim_buf_unref(r->jpeg[nv]);
                r->jpeg[nv] = j;
                r->jpeg_st[nv] = cst;
                r->jpeg_level[nv] = level;
                r->jpeg_board[nv] = board_key;
            }
            img = sim_buf_image(r->jpeg[nv], KS_FORMAT_MJPG, c->w, c->h, 0);
            goto color_image;
        }
        sim_buf *pic = NULL;
        if (level == 16 && (!moving || !w->cfg.render_color)) {
            pic = sim_buf_ref(cst->bgra);
        } else if (r->bgra_scaled && r->bgra_st == cst && r->bgra_level == level && r->bgra_board == board_key) {
            pic = sim_buf_ref(r->bgra_scaled);
        } else {
            pic = sim_buf_new_uninit(cst->bgra->size);
            if (pic) {
                memcpy(pic->data, cst->bgra->data, cst->bgra->size);
                if (moving && w->cfg.render_color)
                    draw_board_color(sc, c, cst->cz, bR, bt, pic->data, 16, -1);
                if (level != 16)
                    color_scale(pic->data, (size_t)c->w * c->h * 4, level);
                sim_buf_unref(r->bgra_scaled);
                r->bgra_scaled = sim_buf_ref(pic);
                r->bgra_st = cst;
                r->bgra_level = level;
                r->bgra_board = board_key;
            }
        }
        if (!pic) {
            status = ks_error_set(err, KS_ENOMEM, "out of memory rendering colour");
            goto out;
        }
        if (cf == KS_FORMAT_MJPG) {
            if (!(r->jpeg[nv] && r->jpeg_st[nv] == cst && r->jpeg_level[nv] == level &&
                  r->jpeg_board[nv] == board_key)) {
                sim_buf *j = NULL;
                sim_buf *src = cnoise ? color_noisy(pic, w->cfg.seed, f->device, (uint64_t)nv) : sim_buf_ref(pic);
                if (!src) {
                    sim_buf_unref(pic);
                    status = ks_error_set(err, KS_ENOMEM, "out of memory rendering colour");
                    goto out;
                }
                status = encode_jpeg(r, src->data, c->w, c->h, &j, err);
                sim_buf_unref(src);
                if (status != KS_OK) {
                    sim_buf_unref(pic);
                    goto out;
                }
                sim_buf_unref(r->jpeg[nv]);
                r->jpeg[nv] = j;
                r->jpeg_st[nv] = cst;
                r->jpeg_level[nv] = level;
                r->jpeg_board[nv] = board_key;
            }
            img = sim_buf_image(r->jpeg[nv], KS_FORMAT_MJPG, c->w, c->h, 0);
        } else {
            sim_buf *src = cnoise ? color_noisy(pic, w->cfg.seed, f->device, f->truth.sequence) : sim_buf_ref(pic);
            if (src && cf == KS_FORMAT_BGRA32)
                img = sim_buf_image(src, KS_FORMAT_BGRA32, c->w, c->h, c->w * 4);
            else if (src)
                img = convert_color(src->data, c->w, c->h, cf);
            sim_buf_unref(src);
        }
        sim_buf_unref(pic);
    color_image:
        if (!img) {
            status = ks_error_set(err, KS_ENOMEM, "out of memory for a colour image");
            goto out;
        }
        stamp_color(img, f, cap);
    }

    if ((f->has_depth || f->has_ir) && dm != KS_DEPTH_OFF) {
        const sim_cam *c = &dst->dcam;
        size_t n = (size_t)c->w * c->h;
        bool damaged = f->n_interf > 0 && w->cfg.render_depth;
        bool noisy = w->cfg.depth_noise_mm > 0 && w->cfg.render_depth;
        bool sensor = w->cfg.sensor && w->cfg.render_depth && dst->zsig;
        sim_buf *depth = NULL, *ir = NULL;
        if ((!moving || !w->cfg.render_depth) && !damaged && !noisy && !sensor) {
            depth = sim_buf_ref(dst->depth);
            ir = sim_buf_ref(dst->ir);
        } else {
            depth = sim_buf_new_uninit(n * 2);
            ir = sim_buf_new_uninit(n * 2);
            if (!depth || !ir) {
                sim_buf_unref(depth);
                sim_buf_unref(ir);
                status = ks_error_set(err, KS_ENOMEM, "out of memory for a depth image");
                goto out;
            }
            uint16_t *dp = (uint16_t *)depth->data, *ip = (uint16_t *)ir->data;
            bool passive = dm == KS_DEPTH_PASSIVE_IR;
            sensor_offsets so = {0};
            if (sensor) { /* the static images through the sensor model, straight into the frame's */
                so = frame_offsets(w->cfg.seed, f->device, f->truth.sequence);
                sensor_frame(dst, dp, ip, n, &so);
            } else {
                memcpy(depth->data, dst->depth->data, n * 2);
                memcpy(ir->data, dst->ir->data, n * 2);
            }
            if (moving && w->cfg.render_depth) {
                if (!view_rays(dst)) {
                    sim_buf_unref(depth);
                    sim_buf_unref(ir);
                    status = ks_error_set(err, KS_ENOMEM, "out of memory for a depth image");
                    goto out;
                }
                board_depth_ctx bd = {dst, dp, ip, passive, sensor, &so};
                for_board_pixels(sc, c, dst->dz, bR, bt, board_depth_pixel, &bd);
            }
            if (noisy) {
                uint64_t rs = w->cfg.seed ^ (f->truth.sequence * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)f->device << 56);
                for (size_t p = 0; p < n; p++)
                    if (dp[p]) {
                        double z = dp[p] + w->cfg.depth_noise_mm * sim_rand_normal(&rs);
                        dp[p] = (uint16_t)(z < 1 ? 1 : z > 65535 ? 65535 : llround(z));
                    }
            }
            if (damaged && f->has_depth) {
                int count = 0;
                for (int k = 0; k < f->n_interf; k++) {
                    int b = f->interf_dev[k];
                    ks_depth_mode bm = f->interf_mode[k];
                    /* the share of this capture's pulse time a foreign pulse overlapped: that share of
                     * the lit pixels is damaged (all of them when every pulse met one fully) */
                    uint32_t share = (uint32_t)lround(1000.0 * f->interf_share[k]);
                    const sim_static *sb = get_static_depth(w, b, bm);
                    if (!sb)
                        continue;
                    const uint8_t *mask = pair_mask(r, b, dst, sb);
                    if (!mask)
                        continue;
                    for (size_t p = 0; p < n; p++) {
                        if (!mask[p] || !dp[p])
                            continue;
                        uint32_t hsh = hash32(p * 0x9E3779B97F4A7C15ull ^ f->truth.sequence ^ ((uint64_t)b << 40));
                        if ((hsh >> 12) % 1000 >= share)
                            continue;
                        /* multipath from the foreign laser: the pixel is invalidated or measured wrong */
                        if (hsh & 1)
                            dp[p] = 0;
                        else
                            dp[p] = (uint16_t)fmin(65535, dp[p] + 60 + (hsh >> 8) % 500);
                        ip[p] = (uint16_t)fmin(65535, ip[p] + 1500);
                        count++;
                    }
                }
                f->truth.corrupted_pixels = count;
            }
        }
        if (f->has_depth) {
            cap->depth = sim_buf_image(depth, KS_FORMAT_DEPTH16, c->w, c->h, c->w * 2);
            if (cap->depth) {
                cap->depth->device_ts_us = f->depth_ts_us;
                cap->depth->system_ts_ns = f->system_ts_ns;
                cap->depth->exposure_us = f->depth_exposure_us;
            }
        }
        cap->ir = sim_buf_image(ir, KS_FORMAT_IR16, c->w, c->h, c->w * 2);
        if (cap->ir) {
            cap->ir->device_ts_us = f->depth_ts_us;
            cap->ir->system_ts_ns = f->system_ts_ns;
            cap->ir->exposure_us = f->depth_exposure_us;
        }
        sim_buf_unref(depth);
        sim_buf_unref(ir);
        if ((f->has_depth && !cap->depth) || !cap->ir)
            status = ks_error_set(err, KS_ENOMEM, "out of memory for a depth image");
    }
    cap->temperature_c = 35.0f;
out:
    pthread_mutex_unlock(&r->cache_mu);
    return status;
}

ks_status ks_sim_set_board_texture(ks_sim *s, const uint8_t *gray, int width, int height, int stride, ks_error *err)
{
    sim_world *w = (sim_world *)s;
    if (!w)
        return ks_error_set(err, KS_EINVAL, "no simulator given");
    sim_scene *sc = &w->scene;
    if (!gray) {
        /* back to the built-in pattern: render it into a scratch scene and install it like any texture */
        sim_scene tmp;
        memset(&tmp, 0, sizeof tmp);
        make_default_texture(&tmp);
        if (!tmp.tex)
            return ks_error_set(err, KS_ENOMEM, "out of memory for the board texture");
        ks_status st = ks_sim_set_board_texture(s, tmp.tex, tmp.tex_w, tmp.tex_h, tmp.tex_w, err);
        free(tmp.tex);
        return st;
    }
    if (width < 1 || height < 1 || stride < width || width > 16384 || height > 16384)
        return ks_error_set(err, KS_EINVAL, "board texture %dx%d (stride %d) is invalid; give 1..16384 pixels",
                            width, height, stride);
    uint8_t *t = malloc((size_t)width * height);
    if (!t)
        return ks_error_set(err, KS_ENOMEM, "out of memory for the board texture");
    for (int y = 0; y < height; y++)
        memcpy(t + (size_t)y * width, gray + (size_t)y * stride, (size_t)width);
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->rig.device_count; i++)
        if (w->devs[i].streaming) {
            pthread_mutex_unlock(&w->mu);
            free(t);
            return ks_error_set(err, KS_ESTATE,
                                "the board texture can only change while no simulated device streams; stop the "
                                "cameras first");
        }
    uint8_t *old = sc->tex;
    sc->tex = t;
    sc->tex_w = width;
    sc->tex_h = height;
    sc->tex_version++;
    for (int i = 0; i < w->rig.device_count; i++) {
        /* static renders that baked the old texture are stale: drop them */
        sim_render_dev *r = w->devs[i].render;
        w->devs[i].render = NULL;
        sim_render_free(r);
    }
    pthread_mutex_unlock(&w->mu);
    free(old);
    return KS_OK;
}

ks_status ks_sim_laser_shared(ks_sim *s, int a, int b, ks_depth_mode mode, int *pixels, ks_error *err)
{
    sim_world *w = (sim_world *)s;
    if (!w || !pixels)
        return ks_error_set(err, KS_EINVAL, "no simulator given");
    *pixels = 0;
    if (a < 0 || b < 0 || a >= w->rig.device_count || b >= w->rig.device_count || a == b)
        return ks_error_set(err, KS_EINVAL, "devices %d and %d are not two devices of the simulated rig", a, b);
    if (!w->cfg.render_depth) {
        *pixels = -1;
        return KS_OK;
    }
    pthread_mutex_lock(&w->mu);
    ks_depth_mode ma = w->devs[a].streaming ? w->devs[a].cfg.depth_mode : mode;
    ks_depth_mode mb = w->devs[b].streaming ? w->devs[b].cfg.depth_mode : mode;
    pthread_mutex_unlock(&w->mu);
    const ks_depth_mode_info *ia = ks_depth_mode_get(ma), *ib = ks_depth_mode_get(mb);
    if (!ia || !ib || !ia->laser_pulses || !ib->laser_pulses)
        return KS_OK;
    const sim_static *sa = get_static_depth(w, a, ma), *sb = get_static_depth(w, b, mb);
    sim_render_dev *ra = render_dev(w, a);
    if (!sa || !sb || !ra)
        return ks_error_set(err, KS_ENOMEM, "out of memory rendering the devices' views");
    pthread_mutex_lock(&ra->cache_mu);
    const uint8_t *mask = pair_mask(ra, b, sa, sb);
    size_t n = (size_t)sa->dcam.w * sa->dcam.h;
    int count = 0;
    for (size_t p = 0; mask && p < n; p++)
        count += mask[p] != 0;
    pthread_mutex_unlock(&ra->cache_mu);
    if (!mask)
        return ks_error_set(err, KS_ENOMEM, "out of memory comparing the devices' views");
    *pixels = count;
    return KS_OK;
}
