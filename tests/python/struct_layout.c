/* The layouts of the C structs python/kinsync/_lib.py mirrors with ctypes, as the compiler lays them
 * out: one line per struct, "name size field:offset ..."; then the constants it copies, one line
 * each, "const NAME value" (the Python name: KS_ kept for statuses, dropped for formats and cloud
 * fields), and the format names in enum order, "formats NAME ...". test_python.sh hands this to
 * test_kinsync.py, which compares every ctypes class with it. A struct Python allocates and hands to
 * the library (options, clouds, errors, set infos, poses) must match in size too: the library reads
 * and writes the whole of it. ks_image is mirrored only as far as a user reads it (Python never
 * allocates one), so only its mirrored fields are compared. */
#include <stddef.h>
#include <stdio.h>

#include "kinsync/calibration.h"
#include "kinsync/device.h"
#include "kinsync/error.h"
#include "kinsync/fuse.h"
#include "kinsync/fuse_sink.h"

#define F(T, f) printf(" %s:%zu", #f, offsetof(T, f))
#define BEGIN(name, T) printf("%s %zu", name, sizeof(T))
#define END() printf("\n")

int main(void)
{
    BEGIN("Error", ks_error);
    F(ks_error, code), F(ks_error, message);
    END();
    BEGIN("Image", ks_image);
    F(ks_image, format), F(ks_image, width), F(ks_image, height), F(ks_image, stride), F(ks_image, data);
    F(ks_image, size), F(ks_image, device_ts_us), F(ks_image, system_ts_ns), F(ks_image, exposure_us);
    F(ks_image, white_balance), F(ks_image, iso_speed);
    END();
    BEGIN("Capture", ks_capture);
    F(ks_capture, color), F(ks_capture, depth), F(ks_capture, ir), F(ks_capture, temperature_c);
    F(ks_capture, refcount);
    END();
    BEGIN("FuseOptions", ks_fuse_options);
    F(ks_fuse_options, voxel_mm), F(ks_fuse_options, threads), F(ks_fuse_options, color);
    F(ks_fuse_options, color_scale), F(ks_fuse_options, normals), F(ks_fuse_options, min_weight);
    F(ks_fuse_options, table_cache_dir), F(ks_fuse_options, keep_points);
    END();
    BEGIN("Cloud", ks_cloud);
    F(ks_cloud, count), F(ks_cloud, capacity), F(ks_cloud, fields), F(ks_cloud, x), F(ks_cloud, y);
    F(ks_cloud, z), F(ks_cloud, rgb), F(ks_cloud, nx), F(ks_cloud, ny), F(ks_cloud, nz), F(ks_cloud, weight);
    F(ks_cloud, devices);
    END();
    BEGIN("FuseSetInfo", ks_fuse_set_info);
    F(ks_fuse_set_info, present), F(ks_fuse_set_info, depth_mask), F(ks_fuse_set_info, color_mask);
    F(ks_fuse_set_info, color_unpaired);
    END();
    BEGIN("Extrinsics", ks_extrinsics);
    F(ks_extrinsics, R), F(ks_extrinsics, t);
    END();
    BEGIN("RigPose", ks_rig_pose);
    F(ks_rig_pose, serial), F(ks_rig_pose, depth_to_rig), F(ks_rig_pose, color_to_rig);
    END();
    printf("const KS_OK %d\nconst KS_ETIMEOUT %d\nconst KS_EEOF %d\n", KS_OK, KS_ETIMEOUT, KS_EEOF);
    printf("const FORMAT_MJPG %d\nconst FORMAT_NV12 %d\nconst FORMAT_YUY2 %d\nconst FORMAT_BGRA32 %d\n",
           KS_FORMAT_MJPG, KS_FORMAT_NV12, KS_FORMAT_YUY2, KS_FORMAT_BGRA32);
    printf("const FORMAT_DEPTH16 %d\nconst FORMAT_IR16 %d\n", KS_FORMAT_DEPTH16, KS_FORMAT_IR16);
    printf("const CLOUD_COLOR %u\nconst CLOUD_NORMALS %u\n", (unsigned)KS_CLOUD_COLOR, (unsigned)KS_CLOUD_NORMALS);
    printf("formats");
    for (int f = 0; f < KS_FORMAT_COUNT; f++)
        printf(" %s", ks_image_format_name((ks_image_format)f));
    printf("\n");
    return 0;
}
