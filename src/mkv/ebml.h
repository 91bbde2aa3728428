/* mkv/ebml.h: EBML primitives shared by the Matroska writer, reader and repair (internal).
 *
 * Element IDs are kept with their length marker (0x1A45DFA3), as written in the file. Sizes are
 * variable-length integers; the all-ones value of any length means "unknown size". The byte
 * buffer (ks_buf) builds elements in memory; master elements are opened with ks_buf_begin and
 * closed with ks_buf_end, which writes the size in the shortest form. */
#ifndef KS_MKV_EBML_H
#define KS_MKV_EBML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EBML_UNKNOWN_SIZE UINT64_MAX

/* IDs used by kinsync (Matroska spec names). */
enum {
    ID_EBML = 0x1A45DFA3, ID_EBMLVERSION = 0x4286, ID_EBMLREADVERSION = 0x42F7, ID_EBMLMAXIDLENGTH = 0x42F2,
    ID_EBMLMAXSIZELENGTH = 0x42F3, ID_DOCTYPE = 0x4282, ID_DOCTYPEVERSION = 0x4287, ID_DOCTYPEREADVERSION = 0x4285,
    ID_VOID = 0xEC, ID_CRC32 = 0xBF,
    ID_SEGMENT = 0x18538067,
    ID_SEEKHEAD = 0x114D9B74, ID_SEEK = 0x4DBB, ID_SEEKID = 0x53AB, ID_SEEKPOSITION = 0x53AC,
    ID_INFO = 0x1549A966, ID_TIMECODESCALE = 0x2AD7B1, ID_MUXINGAPP = 0x4D80, ID_WRITINGAPP = 0x5741,
    ID_DATEUTC = 0x4461, ID_TITLE = 0x7BA9, ID_DURATION = 0x4489,
    ID_TRACKS = 0x1654AE6B, ID_TRACKENTRY = 0xAE, ID_TRACKNUMBER = 0xD7, ID_TRACKUID = 0x73C5, ID_TRACKTYPE = 0x83,
    ID_CODECID = 0x86, ID_NAME = 0x536E, ID_CODECPRIVATE = 0x63A2, ID_DEFAULTDURATION = 0x23E383, ID_VIDEO = 0xE0,
    ID_PIXELWIDTH = 0xB0, ID_PIXELHEIGHT = 0xBA,
    ID_ATTACHMENTS = 0x1941A469, ID_ATTACHEDFILE = 0x61A7, ID_FILENAME = 0x466E, ID_FILEMIMETYPE = 0x4660,
    ID_FILEDATA = 0x465C, ID_FILEUID = 0x46AE,
    ID_TAGS = 0x1254C367, ID_TAG = 0x7373, ID_TARGETS = 0x63C0, ID_TARGETTYPE = 0x63CA, ID_TAGTRACKUID = 0x63C5,
    ID_TAGATTACHMENTUID = 0x63C6, ID_SIMPLETAG = 0x67C8, ID_TAGNAME = 0x45A3, ID_TAGSTRING = 0x4487,
    ID_CLUSTER = 0x1F43B675, ID_TIMECODE = 0xE7, ID_SIMPLEBLOCK = 0xA3, ID_BLOCKGROUP = 0xA0, ID_BLOCK = 0xA1,
    ID_BLOCKDURATION = 0x9B, ID_POSITION = 0xA7, ID_PREVSIZE = 0xAB,
    ID_CUES = 0x1C53BB6B, ID_CUEPOINT = 0xBB, ID_CUETIME = 0xB3, ID_CUETRACKPOSITIONS = 0xB7, ID_CUETRACK = 0xF7,
    ID_CUECLUSTERPOSITION = 0xF1,
    ID_CHAPTERS = 0x1043A770,
};

/* True for the IDs of top-level (segment child) elements. */
bool ebml_is_level1(uint32_t id);

/* Reads an element ID at p (at most avail bytes). Returns its length 1..4, 0 if invalid, -1 if more
 * bytes are needed. */
int ebml_read_id(const uint8_t *p, size_t avail, uint32_t *id);
/* Reads a size vint (1..8 bytes). Unknown size (all ones) gives EBML_UNKNOWN_SIZE. Same returns. */
int ebml_read_size(const uint8_t *p, size_t avail, uint64_t *size);
/* Big-endian unsigned/signed integer and float of len bytes (uint 0..8, float 4 or 8). */
bool ebml_read_uint(const uint8_t *p, uint64_t len, uint64_t *out);
bool ebml_read_float(const uint8_t *p, uint64_t len, double *out);

int ebml_id_len(uint32_t id);
int ebml_size_len(uint64_t size);   /* shortest length for a known size */

/* Growable byte buffer. */
typedef struct ks_buf {
    uint8_t *data;
    size_t len, cap;
    bool oom;          /* set when an allocation failed; later calls do nothing */
    size_t stack[16];  /* open master elements: offset of their 8-byte size placeholder */
    int depth;
} ks_buf;

void ks_buf_free(ks_buf *b);
bool ks_buf_reserve(ks_buf *b, size_t extra);
void ks_buf_put(ks_buf *b, const void *p, size_t n);
void ks_buf_put_id(ks_buf *b, uint32_t id);
void ks_buf_put_size(ks_buf *b, uint64_t size, int len);   /* len 0: shortest */
void ks_buf_put_uint(ks_buf *b, uint32_t id, uint64_t v);  /* shortest big-endian, at least 1 byte */
void ks_buf_put_uint_fixed(ks_buf *b, uint32_t id, uint64_t v, int len);
void ks_buf_put_sint(ks_buf *b, uint32_t id, int64_t v);
void ks_buf_put_float(ks_buf *b, uint32_t id, double v);  /* 8 bytes */
void ks_buf_put_str(ks_buf *b, uint32_t id, const char *s);
void ks_buf_put_bin(ks_buf *b, uint32_t id, const void *p, size_t n);
/* A Void element of exactly total bytes (total >= 2). */
void ks_buf_put_void(ks_buf *b, size_t total);
void ks_buf_begin(ks_buf *b, uint32_t id);
void ks_buf_end(ks_buf *b);
/* Like ks_buf_end, and inserts a CRC-32 element (over the children) as the first child. */
void ks_buf_end_crc(ks_buf *b);

uint32_t ks_crc32(const uint8_t *p, size_t n);

#endif
