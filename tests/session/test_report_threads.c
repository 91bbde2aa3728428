/* Two threads write the HTML sync report of one run at the same time (a program reporting several
 * rigs, or a server): the files are identical to one written alone. The ThreadSanitizer build
 * (scripts/test.sh) fails here if the report code shares writable state between calls. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "kinsync/plan.h"
#include "kinsync/session.h"
#include "ks_test.h"
#include "support/sim_rigs.h"
#include "util/fileio.h"

typedef struct job {
    const ks_syncstats *q;
    char path[256];
    ks_status st;
} job;

static void *write_report(void *arg)
{
    job *j = arg;
    for (int k = 0; k < 3 && j->st == KS_OK; k++)
        j->st = ks_syncstats_write_html(j->q, "threads", j->path, NULL);
    return NULL;
}

static void test_concurrent_reports(void)
{
    ks_rig rig;
    simt_rig(&rig, 3, SIMT_DAISY, 1.0);
    ks_sim_config sc;
    simt_config(&sc, 11, false);
    static ks_plan plan;
    KS_CHECK(ks_plan_make(&rig, NULL, &plan, NULL) == KS_OK);
    ks_backend *b = NULL;
    ks_session *s = NULL;
    ks_error e;
    KS_CHECK(ks_backend_open_sim(&rig, &sc, &b, &e) == KS_OK);
    KS_CHECK(b && ks_session_open(&rig, &plan, b, NULL, &s, &e) == KS_OK);
    KS_CHECK(s && ks_session_start(s, &e) == KS_OK);
    ks_session_set set;
    int sets = 0;
    while (s && sets < 60 && ks_session_next(s, &set, 5000, &e) == KS_OK) {
        ks_session_set_release(&set);
        sets++;
    }
    KS_CHECK_INT(sets, 60);
    if (s)
        ks_session_stop(s);
    const ks_syncstats *q = s ? ks_session_stats(s) : NULL;
    char dir[] = "/tmp/ks_test_report_XXXXXX";
    KS_CHECK(mkdtemp(dir) != NULL);
    job alone = {q, "", KS_OK}, j[2] = {{q, "", KS_OK}, {q, "", KS_OK}};
    snprintf(alone.path, sizeof alone.path, "%s/alone.html", dir);
    snprintf(j[0].path, sizeof j[0].path, "%s/a.html", dir);
    snprintf(j[1].path, sizeof j[1].path, "%s/b.html", dir);
    if (q) {
        write_report(&alone);
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, write_report, &j[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
    }
    KS_CHECK_INT(alone.st, KS_OK);
    char *ref = NULL;
    size_t ref_len = 0;
    KS_CHECK(ks_file_read_all(alone.path, 1u << 24, &ref, &ref_len, NULL) == KS_OK);
    KS_CHECK(ref && strstr(ref, "<rect x="));
    for (int i = 0; i < 2; i++) {
        KS_CHECK_INT(j[i].st, KS_OK);
        char *got = NULL;
        size_t len = 0;
        KS_CHECK(ks_file_read_all(j[i].path, 1u << 24, &got, &len, NULL) == KS_OK);
        KS_CHECK(got && ref && len == ref_len && memcmp(got, ref, len) == 0);
        free(got);
        unlink(j[i].path);
    }
    free(ref);
    unlink(alone.path);
    rmdir(dir);
    ks_session_close(s);
    ks_backend_free(b);
}

int main(void)
{
    KS_RUN(test_concurrent_reports);
    return KS_TEST_END();
}
