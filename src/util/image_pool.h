/* util/image_pool.h: images whose pixel buffers are recycled instead of allocated per frame.
 *
 * A producer that hands out one image per frame (the Matroska reader) takes its images from a pool:
 * ks_image_pool_get returns an ordinary ks_image (refcounted, kinsync/device.h) whose data is a
 * buffer of the pool. When the image's last reference goes (ks_image_release, on any thread), the
 * buffer goes back to the pool's free list instead of to free(), so the next frame reuses memory
 * that is already mapped and faulted in. A fresh malloc of a frame-sized buffer is usually an mmap
 * whose every page faults on first write -- that, not the copy, was most of a reader's CPU.
 *
 * Ownership: the creator holds one reference to the pool and drops it with ks_image_pool_release;
 * every image handed out holds one more until it is destroyed. The pool (and its free buffers) is
 * freed when the last of them goes, so images may outlive their producer. The free list is bounded
 * (buffers and bytes); a buffer returned to a full list is freed. Buffers are not cleared: the
 * producer fills all `size` bytes. Thread-safe (one mutex per pool). Internal. */
#ifndef KS_UTIL_IMAGE_POOL_H
#define KS_UTIL_IMAGE_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "kinsync/device.h"

typedef struct ks_image_pool ks_image_pool;

typedef struct ks_image_pool_stats {
    uint64_t allocated;   /* buffers malloc'd (a get that found no free buffer of the size) */
    uint64_t reused;      /* gets served from the free list */
    uint64_t freed;       /* buffers returned to a full free list, so freed */
    int free_buffers;     /* in the free list now */
    int outstanding;      /* images handed out and not yet destroyed */
} ks_image_pool_stats;

/* max_free: buffers kept for reuse (0: 8); max_free_bytes: their total (0: 64 MiB). NULL when out
 * of memory. */
ks_image_pool *ks_image_pool_create(int max_free, size_t max_free_bytes);
/* Drops the creator's reference (NULL is a no-op). */
void ks_image_pool_release(ks_image_pool *p);
/* An image of `size` bytes of data (stride as given; size is what the data holds), buffer from
 * the free list when one of about that size is there, else malloc'd. NULL when out of memory. */
ks_image *ks_image_pool_get(ks_image_pool *p, ks_image_format fmt, int width, int height, int stride, size_t size);
void ks_image_pool_get_stats(ks_image_pool *p, ks_image_pool_stats *st);

#endif
