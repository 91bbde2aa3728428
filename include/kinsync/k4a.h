/* kinsync/k4a.h: the real-hardware backend, Azure Kinect DK (or Orbbec Femto through Orbbec's K4A
 * wrapper) through libk4a 1.4 loaded at run time.
 *
 * Nothing is linked at build time: ks_backend_open_k4a() dlopens the first library found of
 *   $KINSYNC_K4A_LIBRARY (if set: only that path is tried),
 *   libk4a.so.1.4, libk4a.so.1.4.1, libk4a.so (the Microsoft package libk4a1.4 and the Orbbec
 *   OrbbecSDK-K4A-Wrapper both install libk4a.so.1.4, the wrapper next to libOrbbecSDK.so),
 * then uses it through the device interface of kinsync/device.h. Images handed out wrap libk4a's
 * buffers without copying; releasing the ks_image releases the k4a image. The library stays
 * loaded until the backend and the last image from it are released. */
#ifndef KINSYNC_K4A_H
#define KINSYNC_K4A_H

#include <stdbool.h>
#include <stddef.h>

#include "kinsync/device.h"
#include "kinsync/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Environment variable naming the libk4a to load instead of the search list. */
#define KS_K4A_LIBRARY_ENV "KINSYNC_K4A_LIBRARY"

/* Loads libk4a and wraps it as a backend named "k4a". On success *out is a new backend (free it
 * with ks_backend_free); zero attached devices is still success (ks_backend_device_count gives 0).
 * Errors: KS_ENOTFOUND when no libk4a could be loaded (the message lists what was tried and how to
 * install it), KS_EUNSUPPORTED when the library lacks a required 1.4 entry point, KS_ENOMEM. */
ks_status ks_backend_open_k4a(ks_backend **out, ks_error *err);

/* Path (or soname) of the libk4a the k4a backend b loaded; "" if b is not a k4a backend. */
const char *ks_k4a_backend_library(ks_backend *b);

/* True when the loaded library is Orbbec's K4A wrapper (it depends on libOrbbecSDK). Its sync jack
 * query is not reliable, so the backend reports jacks as unsupported (ks_jack_state.supported
 * false) and sync must be verified from the frames instead. */
bool ks_k4a_backend_is_orbbec(ks_backend *b);

/* Looks for libk4a without keeping it loaded, in the same order as ks_backend_open_k4a. On success
 * writes the path or soname that loaded into path (n bytes). KS_ENOTFOUND as above. */
ks_status ks_k4a_library_probe(char *path, size_t n, ks_error *err);

/* Looks for the depth engine libk4a loads when depth starts (libdepthengine.so.2.0): by soname,
 * then next to the libk4a found (and its libk4a1.4/ subdirectory, where the Debian package puts
 * it). $KINSYNC_DEPTHENGINE_LIBRARY overrides the search. k4a_path may be NULL or "". On success
 * writes where it was found into path. KS_ENOTFOUND with the install advice otherwise. */
ks_status ks_k4a_depthengine_probe(const char *k4a_path, char *path, size_t n, ks_error *err);

#ifdef __cplusplus
}
#endif
#endif
