/* libFuzzer target for the Matroska reader: the input is written to a temporary file (the reader
 * works on files), opened, scanned, iterated, seeked and repaired. Any crash, hang, leak or
 * sanitizer report is a bug. Seeds: fuzz/corpus/fuzz_mkv (small recordings we write, prefixes of
 * the k4arecorder fixture). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinsync/mkv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64], out[80];
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/fuzz_mkv_%d.mkv", (int)getpid());
        snprintf(out, sizeof out, "%s.repaired", path);
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    if (size)
        fwrite(data, 1, size, f);
    fclose(f);
    ks_mkv_reader *r;
    ks_error err = {0};
    if (ks_mkv_reader_open(path, &r, &err) == KS_OK) {
        ks_mkv_item it;
        for (int i = 0; i < 1000 && ks_mkv_reader_next(r, &it, &err) == KS_OK; i++)
            ks_image_release(it.image);
        (void)ks_mkv_reader_scan(r, &err);
        ks_capture *c;
        for (int i = 0; i < 100 && ks_mkv_reader_next_capture(r, &c, &err) == KS_OK; i++)
            ks_capture_release(c);
        (void)ks_mkv_check_playback(r, &err);
        if (ks_mkv_reader_seek(r, ks_mkv_reader_info(r)->start_offset_us + 40000, &err) == KS_OK)
            for (int i = 0; i < 10 && ks_mkv_reader_next(r, &it, &err) == KS_OK; i++)
                ks_image_release(it.image);
        ks_mkv_reader_close(r);
        ks_mkv_repair_report rep;
        if (ks_mkv_repair(path, out, &rep, &err) == KS_OK) {
            /* a repaired file must open */
            if (ks_mkv_reader_open(out, &r, &err) != KS_OK)
                abort();
            ks_mkv_reader_close(r);
        }
        unlink(out);
    }
    unlink(path);
    return 0;
}
