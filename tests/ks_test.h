/* ks_test.h: the project's minimal test harness. A test file defines static test functions and a
 * main() that runs them with KS_RUN; each check that fails prints FILE:LINE and the values, the
 * test goes on, and main returns non-zero if any check failed. ctest runs every executable. */
#ifndef KS_TEST_H
#define KS_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int ks_test_failures;
static int ks_test_checks;
static int ks_test_skipped;
static const char *ks_test_current = "";

#define KS_CHECK(cond)                                                                                    \
    do {                                                                                                  \
        ks_test_checks++;                                                                                 \
        if (!(cond)) {                                                                                    \
            ks_test_failures++;                                                                           \
            fprintf(stderr, "%s:%d: [%s] check failed: %s\n", __FILE__, __LINE__, ks_test_current, #cond); \
        }                                                                                                 \
    } while (0)

#define KS_CHECK_MSG(cond, ...)                                                                           \
    do {                                                                                                  \
        ks_test_checks++;                                                                                 \
        if (!(cond)) {                                                                                    \
            ks_test_failures++;                                                                           \
            fprintf(stderr, "%s:%d: [%s] check failed: %s: ", __FILE__, __LINE__, ks_test_current, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                                 \
            fputc('\n', stderr);                                                                          \
        }                                                                                                 \
    } while (0)

#define KS_CHECK_INT(a, b)                                                                                \
    do {                                                                                                  \
        long long ks_a_ = (long long)(a), ks_b_ = (long long)(b);                                         \
        KS_CHECK_MSG(ks_a_ == ks_b_, "%s = %lld, expected %lld", #a, ks_a_, ks_b_);                       \
    } while (0)

#define KS_CHECK_NEAR(a, b, tol)                                                                          \
    do {                                                                                                  \
        double ks_a_ = (double)(a), ks_b_ = (double)(b);                                                  \
        KS_CHECK_MSG(fabs(ks_a_ - ks_b_) <= (tol), "%s = %.9g, expected %.9g +- %g", #a, ks_a_, ks_b_,    \
                     (double)(tol));                                                                      \
    } while (0)

#define KS_CHECK_STR(a, b)                                                                                \
    do {                                                                                                  \
        const char *ks_a_ = (a), *ks_b_ = (b);                                                            \
        KS_CHECK_MSG(ks_a_ && ks_b_ && strcmp(ks_a_, ks_b_) == 0, "%s = \"%s\", expected \"%s\"", #a,     \
                     ks_a_ ? ks_a_ : "(null)", ks_b_ ? ks_b_ : "(null)");                                 \
    } while (0)

/* Checks that haystack contains needle (for error messages that must name things). */
#define KS_CHECK_CONTAINS(hay, needle)                                                                    \
    do {                                                                                                  \
        const char *ks_h_ = (hay), *ks_n_ = (needle);                                                     \
        KS_CHECK_MSG(ks_h_ && strstr(ks_h_, ks_n_), "\"%s\" does not contain \"%s\"", ks_h_ ? ks_h_ : "", \
                     ks_n_);                                                                              \
    } while (0)

#define KS_RUN(fn)                                                                                        \
    do {                                                                                                  \
        int ks_before_ = ks_test_failures;                                                                \
        ks_test_current = #fn;                                                                            \
        fn();                                                                                             \
        printf("%-4s %s\n", ks_test_failures == ks_before_ ? "ok" : "FAIL", #fn);                         \
    } while (0)

/* A part of a test that cannot run here (a tool of scripts/setup.sh is missing): says SKIP and why.
 * The executable then exits 77 (ctest's SKIP_RETURN_CODE) unless a check failed, so a missing tool
 * shows in ctest as a skipped test, never as a pass. */
#define KS_SKIP(...)                                                                                      \
    do {                                                                                                  \
        ks_test_skipped++;                                                                                \
        printf("SKIP [%s]: ", ks_test_current);                                                           \
        printf(__VA_ARGS__);                                                                              \
        putchar('\n');                                                                                    \
    } while (0)

#define KS_TEST_END()                                                                                     \
    (printf("%d checks, %d failed, %d parts skipped\n", ks_test_checks, ks_test_failures, ks_test_skipped), \
     ks_test_failures ? 1 : ks_test_skipped ? 77 : 0)

#endif
