/* fake_k4a.h: the script and the record of the libk4a test double (fake_k4a.c).
 *
 * The double is a shared library exporting libk4a 1.4's symbol names with the SDK's ABI. A test
 * loads the same file the backend loads (dlopen of one path yields one instance), fetches the
 * state with fake_k4a_get_state() and scripts devices, captures, jacks and failures in it; the double
 * records what the backend passed (the raw bytes of the configuration struct, control commands,
 * timeouts) so the test can check exact offsets and enum values against the SDK's numbers.
 *
 * The layouts written here are the double's own reading of the SDK header, deliberately not the
 * backend's k4a_abi.h, so a mistake on one side shows up as a difference. */
#ifndef KS_FAKE_K4A_H
#define KS_FAKE_K4A_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAKE_MAX_DEVICES 4
#define FAKE_MAX_CAPTURES 8
#define FAKE_MAX_IMU 8

typedef struct fake_image_script {
    bool present;
    int format;               /* k4a_image_format_t value */
    int width, height, stride;
    size_t size;              /* buffer bytes (filled with a pattern) */
    uint64_t device_ts_usec, system_ts_nsec, exposure_usec;
    uint32_t white_balance, iso_speed;
} fake_image_script;

typedef struct fake_capture_script {
    int wait_result;          /* 0 succeeded, 1 failed, 2 timeout */
    fake_image_script color, depth, ir;
    float temperature_c;
} fake_capture_script;

typedef struct fake_imu_script {
    int wait_result;
    float temperature, acc[3], gyro[3];
    uint64_t acc_ts, gyro_ts;
} fake_imu_script;

typedef struct fake_device {
    char serial[64];
    uint32_t versions[4][3];  /* rgb, depth, audio, depth_sensor: major, minor, iteration */
    int firmware_build, firmware_signature;
    const char *calibration;  /* returned with its terminating NUL, as the SDK does */
    bool jack_in, jack_out, jack_fails;
    bool open_fails, serial_fails, version_fails, calibration_fails, start_fails, imu_fails, control_fails;
    int32_t control_value[10];
    int control_mode[10];
    fake_capture_script captures[FAKE_MAX_CAPTURES];
    int capture_count, capture_next;
    fake_imu_script imu[FAKE_MAX_IMU];
    int imu_count, imu_next;
    /* record */
    bool is_open, streaming, imu_running;
    int open_count, close_count, start_count, stop_count, imu_start_count, imu_stop_count;
} fake_device;

typedef struct fake_k4a_state {
    int device_count;
    fake_device devices[FAKE_MAX_DEVICES];
    /* record */
    unsigned char last_config[64];     /* raw bytes of the k4a_device_configuration_t passed to start */
    int last_control_command, last_control_mode;
    int32_t last_control_value;
    int last_caps_command;
    int32_t last_capture_timeout, last_imu_timeout;
    int live_images, live_captures;    /* created and not yet released */
    int image_releases;
    bool log_handler_set;              /* k4a_set_debug_message_handler was called */
    int log_min_level;                 /* its min_level (k4a_log_level_t) */
    void (*log_cb)(void *, int, const char *, const int, const char *);
    void *log_ctx;
} fake_k4a_state;

typedef fake_k4a_state *(*fake_k4a_state_fn)(void);

#endif
