/* Recycled image buffers (util/image_pool.h). A fresh buffer (every one is 64 KiB or more) is an
 * anonymous mapping with its pages populated in one system call (MAP_POPULATE): written page by
 * page instead, each 4 KiB page faulted in on its own, ~10 us each on a virtual machine, so a
 * reader's first ~15 NFOV depth frames cost ~2.5 ms of faults each (start-up of `kinsync fuse`
 * over recordings); populated, ~0.15 ms. The same as the simulator's frame blocks (sim_world.c). */
#include "util/image_pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>

#define POOL_MAX 32
/* Each buffer starts with this header; the image's data follows it (64 bytes keep it aligned). */
#define HDR 64

typedef struct buf_hdr {
    size_t cap;               /* bytes of data after the header */
} buf_hdr;

struct ks_image_pool {
    pthread_mutex_t mu;
    int refs;                 /* the creator + one per outstanding image */
    int max_free;
    size_t max_bytes, free_bytes;
    int nfree;
    uint8_t *free[POOL_MAX];  /* buffers (header first) */
    ks_image_pool_stats st;
};

/* Buffers are sized in 64 KiB steps so that frames of varying size (MJPEG) still find one. */
static size_t round_cap(size_t n)
{
    const size_t step = (size_t)64 << 10;
    if (n > SIZE_MAX - step - HDR)
        return 0;
    return n ? (n + step - 1) / step * step : step;
}

static size_t cap_of(const uint8_t *buf)
{
    return ((const buf_hdr *)(const void *)buf)->cap;
}

/* A buffer of HDR + cap bytes, its pages populated; NULL when out of memory. */
static uint8_t *buf_alloc(size_t cap)
{
    void *m = mmap(NULL, HDR + cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    ((buf_hdr *)m)->cap = cap;
    return m;
}

static void buf_free(uint8_t *buf)
{
    if (buf)
        munmap(buf, HDR + cap_of(buf));
}

ks_image_pool *ks_image_pool_create(int max_free, size_t max_free_bytes)
{
    ks_image_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    p->refs = 1;
    p->max_free = max_free <= 0 ? 8 : max_free > POOL_MAX ? POOL_MAX : max_free;
    p->max_bytes = max_free_bytes ? max_free_bytes : (size_t)64 << 20;
    return p;
}

/* Drops one reference; called with p->mu held, unlocks it (and frees p at the last). */
static void unref_locked(ks_image_pool *p)
{
    bool last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (!last)
        return;
    for (int i = 0; i < p->nfree; i++)
        buf_free(p->free[i]);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void ks_image_pool_release(ks_image_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    unref_locked(p);
}

/* ks_image destroy callback: the buffer back to the free list (or freed), the image's pool ref
 * dropped. A pool whose creator is gone keeps nothing. */
static void give_back(ks_image *img, void *ctx)
{
    ks_image_pool *p = ctx;
    uint8_t *buf = img->data - HDR;
    size_t cap = cap_of(buf);
    img->data = NULL;
    pthread_mutex_lock(&p->mu);
    p->st.outstanding--;
    if (p->refs > 1 && p->nfree < p->max_free && p->free_bytes + cap <= p->max_bytes) {
        p->free[p->nfree++] = buf;
        p->free_bytes += cap;
    } else {
        buf_free(buf);
        p->st.freed++;
    }
    unref_locked(p);
}

ks_image *ks_image_pool_get(ks_image_pool *p, ks_image_format fmt, int width, int height, int stride, size_t size)
{
    size_t want = round_cap(size);
    if (!want)
        return NULL;
    uint8_t *buf = NULL;
    pthread_mutex_lock(&p->mu);
    /* the newest free buffer that fits and is not much larger (so 720p MJPEG frames do not hold
     * BGRA-sized buffers) */
    for (int i = p->nfree - 1; i >= 0; i--) {
        size_t c = cap_of(p->free[i]);
        if (c >= size && c <= 2 * want) {
            buf = p->free[i];
            p->free_bytes -= c;
            p->free[i] = p->free[--p->nfree];
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    bool fresh = !buf;
    if (fresh && !(buf = buf_alloc(want)))
        return NULL;
    ks_image *img = ks_image_wrap(fmt, width, height, stride, buf + HDR, size, give_back, p);
    if (!img) {
        buf_free(buf); /* a free-list buffer too: the pool only shrinks */
        return NULL;
    }
    pthread_mutex_lock(&p->mu);
    if (fresh)
        p->st.allocated++;
    else
        p->st.reused++;
    p->refs++;
    p->st.outstanding++;
    pthread_mutex_unlock(&p->mu);
    return img;
}

void ks_image_pool_get_stats(ks_image_pool *p, ks_image_pool_stats *st)
{
    pthread_mutex_lock(&p->mu);
    *st = p->st;
    st->free_buffers = p->nfree;
    pthread_mutex_unlock(&p->mu);
}
