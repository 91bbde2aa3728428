/* The view's threads below the capture path (view/view_internal.h). Linux keeps a nice value per
 * thread (setpriority on a thread id) and a new thread inherits its creator's: a thread that lowers
 * itself before it creates others (libmicrohttpd's listen thread, its connection threads) lowers
 * them too. Raising one's own nice value never needs a privilege. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "view/view_internal.h"

int ks_view_thread_lower(const char *name)
{
    if (name)
        pthread_setname_np(pthread_self(), name); /* at most 15 characters; seen in top -H, /proc */
    id_t tid = (id_t)syscall(SYS_gettid);
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, tid);
    if (cur == -1 && errno)
        return 0;
    int want = cur + KS_VIEW_NICE > 19 ? 19 : cur + KS_VIEW_NICE;
    if (want > cur && setpriority(PRIO_PROCESS, tid, want) != 0)
        return cur;
    return want;
}
