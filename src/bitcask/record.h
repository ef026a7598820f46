/*
 * record.h -- the on-disk encodings of the storage engine: data-file records,
 * data-file headers and hint files.  Pure functions over byte buffers, no I/O:
 * the recovery code, the merge and the fuzzers all parse through here, and
 * man/dynkv-format.5 describes exactly these layouts.
 *
 * All integers are little-endian and unaligned; nothing is ever read by
 * casting a struct onto the bytes.
 *
 * Data file (NNNNNNNNNNNNNNNN.data, 16 hex digits = the file id):
 *
 *   file header, 16 bytes
 *     0   8  magic "DKVDATA1"
 *     8   4  u32 format version (1)
 *    12   4  u32 crc32c of bytes 0..11
 *   then records, back to back:
 *     0   4  u32 crc32c of bytes 4 .. end of record
 *     4   8  u64 timestamp (microseconds since the Unix epoch)
 *    12   1  u8  flags: bit 0 = tombstone; other bits must be 0
 *    13   2  u16 key length K
 *    15   4  u32 value length V (0 for a tombstone)
 *    19   K  key
 *  19+K   V  value
 *
 * Hint file (NNNNNNNNNNNNNNNN.hint, same id as its data file):
 *
 *   header, 32 bytes
 *     0   8  magic "DKVHINT1"
 *     8   4  u32 format version (1)
 *    12   4  u32 number of entries
 *    16   8  u64 size in bytes of the data file it describes
 *    24   4  u32 crc32c of every entry byte (bytes 32 .. end)
 *    28   4  u32 crc32c of bytes 0..27
 *   then entries, back to back:
 *     0   8  u64 timestamp
 *     8   4  u32 offset of the record in the data file
 *    12   4  u32 total size of the record (header + key + value)
 *    16   1  u8  flags (as in the record)
 *    17   2  u16 key length K
 *    19   K  key
 *
 * A hint file is used only when both checksums match and its data-file size
 * equals the data file's actual size; otherwise the data file is scanned.
 */
#ifndef DKV_BITCASK_RECORD_H
#define DKV_BITCASK_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REC_HDR_SIZE        19u
#define REC_FLAG_TOMBSTONE  0x01u
#define REC_FLAGS_KNOWN     0x01u
#define REC_MAX_KEY         65535u

#define DATAFILE_MAGIC      "DKVDATA1"
#define DATAFILE_HDR_SIZE   16u
#define DATAFILE_VERSION    1u

#define HINT_MAGIC          "DKVHINT1"
#define HINT_HDR_SIZE       32u
#define HINT_VERSION        1u
#define HINT_ENTRY_HDR_SIZE 19u

/* A record as parsed: key and value point into the parsed buffer (borrowed
 * until that buffer is freed or reused). */
typedef struct rec_view {
	uint64_t timestamp;     /* microseconds since the epoch */
	uint8_t flags;          /* REC_FLAG_* */
	uint16_t key_len;       /* bytes at key */
	uint32_t value_len;     /* bytes at value */
	const uint8_t *key;     /* borrowed */
	const uint8_t *value;   /* borrowed */
	uint32_t size;          /* total encoded size: header + key + value */
} rec_view;

/* One hint-file entry as parsed (key borrowed from the parsed buffer). */
typedef struct hint_entry {
	uint64_t timestamp;
	uint32_t offset;        /* of the record in its data file */
	uint32_t size;          /* of the whole record */
	uint8_t flags;
	uint16_t key_len;
	const uint8_t *key;     /* borrowed */
} hint_entry;

/* Decoded hint-file header. */
typedef struct hint_header {
	uint32_t version;
	uint32_t count;         /* entries */
	uint64_t data_size;     /* size of the data file described */
	uint32_t entries_crc;   /* crc32c of all entry bytes */
} hint_header;

/* Little-endian helpers. */
static inline void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

/* Encoded size of a record, or 0 if it cannot be encoded (key too long or
 * the total would not fit in 32 bits). */
uint32_t rec_size(size_t key_len, size_t value_len);

/* Encode one record into out, which has room for rec_size() bytes.  Returns
 * the number of bytes written. */
uint32_t rec_encode(uint8_t *out, uint64_t timestamp, uint8_t flags,
		    const void *key, uint16_t key_len,
		    const void *value, uint32_t value_len);

/* Parse the record at buf[0..avail).  Returns:
 *   0             *out filled; out->size bytes were consumed
 *   -EAGAIN       the header or body runs past avail (a truncated record:
 *                 a torn tail if this is the end of the file)
 *   DKV_ECORRUPT  checksum mismatch, unknown flag bits, or a length that no
 *                 writer produces (value on a tombstone, size over max_rec)
 * max_rec bounds the record size accepted (0 = no bound beyond 32 bits). */
int rec_decode(const uint8_t *buf, size_t avail, uint32_t max_rec, rec_view *out);

/* Data-file header: encode into out[DATAFILE_HDR_SIZE]; check one. */
void datafile_header_encode(uint8_t *out);
int datafile_header_check(const uint8_t *buf, size_t avail);  /* 0, DKV_ECORRUPT, DKV_EVERSION, -EAGAIN */

/* Hint files. */
uint32_t hint_entry_size(uint16_t key_len);
uint32_t hint_entry_encode(uint8_t *out, uint64_t timestamp, uint32_t offset,
			   uint32_t size, uint8_t flags, const void *key, uint16_t key_len);
void hint_header_encode(uint8_t *out, uint32_t count, uint64_t data_size, uint32_t entries_crc);
/* Parse and check the header (its own crc, magic, version).  Does not check
 * entries_crc: the caller does, over the whole entry area. */
int hint_header_decode(const uint8_t *buf, size_t avail, hint_header *out);
/* Parse one entry at buf[0..avail); returns its size (> 0) or DKV_ECORRUPT /
 * -EAGAIN. */
int hint_entry_decode(const uint8_t *buf, size_t avail, hint_entry *out);

/* Validate a whole hint file image (header, entry checksum, every entry
 * well formed and its record within data_size): 0 or DKV_ECORRUPT /
 * DKV_EVERSION.  On success *hdr is filled. */
int hint_validate(const uint8_t *buf, size_t len, hint_header *hdr);

#endif /* DKV_BITCASK_RECORD_H */
