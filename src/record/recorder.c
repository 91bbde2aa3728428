/* The recording sink (kinsync/record.h): one Matroska writer per device behind a mutex each, so
 * capture threads of different devices never wait for each other; the only shared state is the
 * list of writers, fixed at open. Out-of-order data (a subordinate whose clock was reset by a
 * restart) is refused by the writer with KS_ESTATE: it is counted, not fatal, because the frames
 * before it are good and the recording should go on. IMU samples are held back until a capture at
 * least as new has been written, so the IMU stream running ahead of the images never makes the
 * writer refuse a capture. */
#include "kinsync/record.h"
#include "kinsync/timing.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMU_HOLD_MAX 8192   /* about 5 s of samples at 1.6 kHz */

typedef struct rec_dev {
    pthread_mutex_t mu;
    ks_mkv_writer *w;
    char *path;
    ks_record_stats st;
    /* IMU samples newer than the newest capture wait here: a device's IMU runs ahead of its
     * images (which reach the host later), and the writer refuses data older than what it wrote */
    ks_imu_sample *hold;
    int nhold;
    uint64_t last_capture_ts;
    /* `timestamps: auto`: (depth ts - colour ts) - planned depth delay of the first captures, to
     * tag the recording with the convention measured (ks_ts_convention_detect) */
    bool measure_ts;
    ks_wired_sync_mode mode;
    double depth_delay_us;
    double tsres[64], seed_pred_sum;
    int ntsres;
    /* gaps: the previous color and depth/IR timestamps and the frame period */
    int64_t period_us;
    uint64_t prev_ts[2];
    uint64_t missing[2];
} rec_dev;

struct ks_recorder {
    int count;
    rec_dev *devs;
};

void ks_record_role_names(const ks_rig *rig, char names[][64])
{
    int standalone = 0, sub = 0;
    for (int i = 0; i < rig->device_count; i++) {
        ks_role r = rig->devices[i].derived_role != KS_ROLE_AUTO ? rig->devices[i].derived_role : rig->devices[i].role;
        if (r == KS_ROLE_STANDALONE || r == KS_ROLE_AUTO)
            standalone++;
    }
    int k = 0;
    for (int i = 0; i < rig->device_count; i++) {
        ks_role r = rig->devices[i].derived_role != KS_ROLE_AUTO ? rig->devices[i].derived_role : rig->devices[i].role;
        if (r == KS_ROLE_MASTER)
            snprintf(names[i], 64, "master");
        else if (r == KS_ROLE_SUBORDINATE)
            snprintf(names[i], 64, "sub%d", ++sub);
        else if (standalone == 1)
            snprintf(names[i], 64, "standalone");
        else
            snprintf(names[i], 64, "standalone%d", ++k);
    }
}

void ks_record_file_name(const char *role, const char *serial, char *buf, size_t n)
{
    snprintf(buf, n, "%s-%s.mkv", role && role[0] ? role : "device", serial && serial[0] ? serial : "unknown");
    for (char *p = buf; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok)
            *p = '_';
    }
}

static ks_status make_dir(const char *dir, ks_error *err)
{
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return ks_error_set(err, KS_EIO, "%s exists and is not a directory; give --out a directory", dir);
        return KS_OK;
    }
    /* create missing parents too, like mkdir -p */
    char path[1024];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            break; /* the final mkdir reports the problem */
        *p = '/';
    }
    if (mkdir(dir, 0777) != 0)
        return ks_error_set(err, KS_EIO, "cannot create directory %s: %s; check the path and permissions", dir,
                            strerror(errno));
    return KS_OK;
}

static void free_all(ks_recorder *r, bool abort_writers)
{
    for (int i = 0; i < r->count; i++) {
        if (r->devs[i].w && abort_writers)
            ks_mkv_writer_abort(r->devs[i].w);
        free(r->devs[i].path);
        free(r->devs[i].hold);
        pthread_mutex_destroy(&r->devs[i].mu);
    }
    free(r->devs);
    free(r);
}

ks_status ks_recorder_open(const char *dir, int count, const ks_record_device *devs, const ks_recorder_options *opts,
                           ks_recorder **out, ks_error *err)
{
    if (!dir || !devs || !out || count < 1)
        return ks_error_set(err, KS_EINVAL, "ks_recorder_open: a directory and at least one device are required");
    ks_status st = make_dir(dir, err);
    if (st != KS_OK)
        return st;
    ks_recorder_options o;
    if (opts)
        o = *opts;
    else
        memset(&o, 0, sizeof o);
    ks_recorder *r = calloc(1, sizeof *r);
    if (!r || !(r->devs = calloc((size_t)count, sizeof *r->devs))) {
        free(r);
        return ks_error_set(err, KS_ENOMEM, "out of memory opening the recording");
    }
    r->count = count;
    for (int i = 0; i < count; i++)
        pthread_mutex_init(&r->devs[i].mu, NULL);
    for (int i = 0; i < count && st == KS_OK; i++) {
        const ks_record_device *d = &devs[i];
        char name[160];
        ks_record_file_name(d->role, d->serial, name, sizeof name);
        size_t n = strlen(dir) + strlen(name) + 2;
        r->devs[i].path = malloc(n);
        if (!r->devs[i].path) {
            st = ks_error_set(err, KS_ENOMEM, "out of memory opening the recording");
            break;
        }
        snprintf(r->devs[i].path, n, "%s/%s", dir, name);
        for (int j = 0; j < i; j++)
            if (!strcmp(r->devs[j].path, r->devs[i].path))
                st = ks_error_set(err, KS_EINVAL, "devices %d and %d would both be recorded to %s; give each device "
                                  "its own serial", j, i, r->devs[i].path);
        if (st != KS_OK)
            break;
        if (!o.overwrite && access(r->devs[i].path, F_OK) == 0) {
            st = ks_error_set(err, KS_EINVAL, "%s already exists; record into an empty directory or remove it",
                              r->devs[i].path);
            break;
        }
        ks_mkv_desc desc;
        ks_mkv_desc_init(&desc);
        snprintf(desc.serial, sizeof desc.serial, "%s", d->serial);
        desc.color_fw = d->color_fw;
        desc.depth_fw = d->depth_fw;
        desc.has_firmware = d->has_firmware;
        desc.color_format = d->config.color_format;
        desc.color_resolution = d->config.color_resolution;
        desc.depth_mode = d->config.depth_mode;
        desc.fps = d->config.camera_fps;
        desc.sync_mode = d->config.wired_sync_mode;
        desc.subordinate_delay_us = d->config.subordinate_delay_off_master_usec;
        desc.depth_delay_us = d->config.depth_delay_off_color_usec;
        desc.calibration_json = d->calibration_json;
        desc.calibration_len = d->calibration_len;
        desc.imu = d->imu;
        snprintf(desc.rig_name, sizeof desc.rig_name, "%s", o.rig_name);
        snprintf(desc.role, sizeof desc.role, "%s", d->role);
        snprintf(desc.plan_digest, sizeof desc.plan_digest, "%s", o.plan_digest);
        desc.color_exposure_us = o.color_exposure_us;
        snprintf(desc.timestamps, sizeof desc.timestamps, "%s", o.timestamps);
        r->devs[i].measure_ts = !strcmp(o.timestamps, ks_ts_convention_name(KS_TS_AUTO));
        r->devs[i].mode = d->config.wired_sync_mode;
        r->devs[i].depth_delay_us = ks_delay_effective_us(d->config.depth_delay_off_color_usec);
        ks_mkv_writer_options wo = o.mkv;
        if (wo.uid_seed)
            wo.uid_seed += (uint64_t)i * 1000003u;
        r->devs[i].period_us = ks_frame_period_us(d->config.camera_fps);
        st = ks_mkv_writer_open(r->devs[i].path, &desc, &wo, &r->devs[i].w, err);
        if (st != KS_OK)
            ks_error_prefix(err, st, "device %s (%s)", d->serial, d->role);
    }
    if (st != KS_OK) {
        free_all(r, true);
        return st;
    }
    *out = r;
    return KS_OK;
}

static ks_status check_dev(ks_recorder *r, int device, ks_error *err)
{
    if (!r || device < 0 || device >= r->count)
        return ks_error_set(err, KS_EINVAL, "no recorded device %d", device);
    return KS_OK;
}

static void update_bytes(rec_dev *d)
{
    ks_mkv_writer_stats ws;
    ks_mkv_writer_get_stats(d->w, &ws);
    d->st.bytes = ws.bytes;
}

/* Counts the frames a track skipped: consecutive images of a stream are one period apart, a gap
 * of k periods lost k - 1 frames. lost = the larger of the color and the depth/IR count. */
static void note_gap(rec_dev *d, int track, uint64_t ts)
{
    if (d->period_us > 0 && d->prev_ts[track] && ts > d->prev_ts[track]) {
        int64_t k = ((int64_t)(ts - d->prev_ts[track]) + d->period_us / 2) / d->period_us;
        if (k > 1)
            d->missing[track] += (uint64_t)(k - 1);
    }
    if (ts > d->prev_ts[track])
        d->prev_ts[track] = ts;
    d->st.lost = d->missing[0] > d->missing[1] ? d->missing[0] : d->missing[1];
}

static void note_ts(rec_dev *d, uint64_t ts)
{
    if (!d->st.first_ts_us || ts < d->st.first_ts_us)
        d->st.first_ts_us = ts;
    if (ts > d->st.last_ts_us)
        d->st.last_ts_us = ts;
}

/* Writes one IMU sample; called with d->mu held. */
static ks_status write_imu(rec_dev *d, const ks_imu_sample *s, ks_error *err)
{
    ks_error e;
    ks_status st = ks_mkv_writer_add_imu(d->w, s, &e);
    if (st == KS_ESTATE) {
        d->st.rejected++;
        return KS_OK;
    }
    if (st == KS_OK) {
        d->st.imu_samples++;
        return KS_OK;
    }
    if (err)
        *err = e;
    if (st == KS_EIO)
        d->st.failed = true;
    return st;
}

/* Writes the held IMU samples up to ts (all when ts is UINT64_MAX); d->mu held. */
static ks_status flush_imu(rec_dev *d, uint64_t ts, ks_error *err)
{
    int k = 0;
    ks_status st = KS_OK;
    while (k < d->nhold && d->hold[k].acc_ts_us <= ts && st == KS_OK)
        st = write_imu(d, &d->hold[k++], err);
    if (k) {
        memmove(d->hold, d->hold + k, (size_t)(d->nhold - k) * sizeof *d->hold);
        d->nhold -= k;
    }
    return st;
}

ks_status ks_recorder_add_capture(ks_recorder *r, int device, const ks_capture *cap, ks_error *err)
{
    ks_status st = check_dev(r, device, err);
    if (st != KS_OK || !cap)
        return st ? st : ks_error_set(err, KS_EINVAL, "no capture given");
    rec_dev *d = &r->devs[device];
    pthread_mutex_lock(&d->mu);
    if (d->st.failed) {
        pthread_mutex_unlock(&d->mu);
        return ks_error_set(err, KS_EIO, "%s: the recording failed earlier", d->path);
    }
    ks_image *imgs[3] = {cap->color, cap->depth, cap->ir};
    const ks_mkv_track_kind kinds[3] = {KS_MKV_COLOR, KS_MKV_DEPTH, KS_MKV_IR};
    int written = 0;
    if (cap->color)
        note_gap(d, 0, cap->color->device_ts_us);
    if (cap->depth || cap->ir)
        note_gap(d, 1, (cap->depth ? cap->depth : cap->ir)->device_ts_us);
    for (int k = 0; k < 3 && st == KS_OK; k++) {
        if (!imgs[k])
            continue;
        ks_error e;
        st = ks_mkv_writer_add_image(d->w, kinds[k], imgs[k], &e);
        if (st == KS_ESTATE) {
            d->st.rejected++;
            st = KS_OK;
            break;
        }
        if (st != KS_OK) {
            if (err)
                *err = e;
            if (st == KS_EIO)
                d->st.failed = true;
            break;
        }
        note_ts(d, imgs[k]->device_ts_us);
        written++;
    }
    if (d->measure_ts && cap->color && (cap->depth || cap->ir) && d->ntsres < (int)(sizeof d->tsres / sizeof *d->tsres) &&
        d->mode != KS_SYNC_STANDALONE) {
        const ks_image *dimg = cap->depth ? cap->depth : cap->ir;
        d->tsres[d->ntsres++] = (double)dimg->device_ts_us - (double)cap->color->device_ts_us - d->depth_delay_us;
        d->seed_pred_sum += ks_ts_depth_minus_color_residual_us(KS_TS_SEED, d->mode, (double)cap->color->exposure_us,
                                                                (double)dimg->exposure_us);
    }
    d->st.images += (uint64_t)written;
    if (written) {
        d->st.captures++;
        uint64_t newest = 0;
        for (int k = 0; k < 3; k++)
            if (imgs[k] && imgs[k]->device_ts_us > newest)
                newest = imgs[k]->device_ts_us;
        if (newest > d->last_capture_ts)
            d->last_capture_ts = newest;
        if (st == KS_OK)
            st = flush_imu(d, d->last_capture_ts, err);
    }
    update_bytes(d);
    pthread_mutex_unlock(&d->mu);
    return st;
}

ks_status ks_recorder_add_imu(ks_recorder *r, int device, const ks_imu_sample *s, ks_error *err)
{
    ks_status st = check_dev(r, device, err);
    if (st != KS_OK || !s)
        return st ? st : ks_error_set(err, KS_EINVAL, "no IMU sample given");
    rec_dev *d = &r->devs[device];
    pthread_mutex_lock(&d->mu);
    if (s->acc_ts_us <= d->last_capture_ts && d->nhold == 0) {
        st = write_imu(d, s, err);
    } else {
        if (!d->hold && !(d->hold = malloc(IMU_HOLD_MAX * sizeof *d->hold))) {
            pthread_mutex_unlock(&d->mu);
            return ks_error_set(err, KS_ENOMEM, "%s: out of memory for IMU samples", d->path);
        }
        if (d->nhold == IMU_HOLD_MAX) /* no image for seconds: let the oldest go through */
            st = flush_imu(d, d->hold[0].acc_ts_us, err);
        d->hold[d->nhold++] = *s;
    }
    pthread_mutex_unlock(&d->mu);
    return st;
}

ks_status ks_recorder_stats(ks_recorder *r, int device, ks_record_stats *out, ks_error *err)
{
    ks_status st = check_dev(r, device, err);
    if (st != KS_OK)
        return st;
    rec_dev *d = &r->devs[device];
    pthread_mutex_lock(&d->mu);
    *out = d->st;
    pthread_mutex_unlock(&d->mu);
    return KS_OK;
}

int ks_recorder_device_count(const ks_recorder *r)
{
    return r ? r->count : 0;
}

const char *ks_recorder_path(const ks_recorder *r, int device)
{
    return r && device >= 0 && device < r->count ? r->devs[device].path : NULL;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The convention a device's timestamps follow, from what add_capture collected; "auto" if undecided. */
static const char *measured_ts(rec_dev *d)
{
    if (!d->ntsres)
        return ks_ts_convention_name(KS_TS_AUTO);
    qsort(d->tsres, (size_t)d->ntsres, sizeof *d->tsres, cmp_dbl);
    double med = d->ntsres % 2 ? d->tsres[d->ntsres / 2] : (d->tsres[d->ntsres / 2 - 1] + d->tsres[d->ntsres / 2]) / 2;
    return ks_ts_convention_name(ks_ts_convention_detect(med, d->seed_pred_sum / d->ntsres));
}

ks_status ks_recorder_close(ks_recorder *r, ks_error *err)
{
    if (!r)
        return KS_OK;
    ks_status first = KS_OK;
    for (int i = 0; i < r->count; i++) {
        rec_dev *d = &r->devs[i];
        pthread_mutex_lock(&d->mu);
        ks_error e;
        ks_status st = d->w ? flush_imu(d, UINT64_MAX, &e) : KS_OK;
        if (st == KS_OK && d->w && d->measure_ts) /* recordings carry what was measured */
            st = ks_mkv_writer_set_timestamps(d->w, measured_ts(d), &e);
        if (d->w) {
            ks_status cst = ks_mkv_writer_close(d->w, st == KS_OK ? &e : NULL);
            if (st == KS_OK)
                st = cst;
        }
        d->w = NULL;
        pthread_mutex_unlock(&d->mu);
        if (st != KS_OK && first == KS_OK) {
            first = st;
            if (err)
                *err = e;
        }
    }
    free_all(r, false);
    return first;
}

void ks_recorder_abort(ks_recorder *r)
{
    if (r)
        free_all(r, true);
}
