/*
 * crc32c.h -- CRC-32C (Castagnoli; reflected polynomial 0x82F63B78, initial
 * value and final xor 0xFFFFFFFF), the checksum of every data-file record,
 * hint file and (later) frame.
 *
 * crc32c() picks, once, the SSE4.2 `crc32` instruction when the CPU has it and
 * a portable slicing-by-8 table otherwise.  Both paths are exported so that a
 * test can run them side by side on the same inputs.
 *
 * Incremental use: crc = crc32c(0, a, n); crc = crc32c(crc, b, m) equals
 * crc32c(0, a||b, n+m).  Thread-safe (the table is built before main by a
 * constructor, or on first use under pthread_once).
 */
#ifndef DKV_CRC32C_H
#define DKV_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Continue `crc` (0 to start) over len bytes of buf. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable table path. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* The SSE4.2 path; only call when crc32c_hw_available() is true. */
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);

/* True iff this CPU has the SSE4.2 crc32 instruction (and this build has the
 * path: x86-64 only). */
bool crc32c_hw_available(void);

#endif /* DKV_CRC32C_H */
