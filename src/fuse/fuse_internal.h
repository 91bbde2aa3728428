/* fuse/fuse_internal.h: helpers shared by the files of src/fuse. Not part of the public API. */
#ifndef KS_FUSE_INTERNAL_H
#define KS_FUSE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* The hot loops are written as plain C that GCC vectorizes at -O3; the library builds at -O2
 * (whose "very cheap" vectorizer skips loops with a remainder), so they ask for O3 themselves and
 * get an AVX2+FMA clone picked at load time on x86-64. Sanitizer builds keep the plain version. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define KS_HOT __attribute__((optimize("O3"), target_clones("arch=x86-64-v3", "default")))
#elif defined(__GNUC__) && !defined(__clang__)
#define KS_HOT __attribute__((optimize("O3")))
#else
#define KS_HOT
#endif

/* Milliseconds on the monotonic clock. */
double ks_fuse_now_ms(void);

#endif
