/* record.c -- encoders and parsers of data records and hint files; see record.h. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "crc32c.h"
#include "error.h"
#include "record.h"

_Static_assert(REC_HDR_SIZE == 4 + 8 + 1 + 2 + 4, "record header layout");
_Static_assert(HINT_ENTRY_HDR_SIZE == 8 + 4 + 4 + 1 + 2, "hint entry layout");
_Static_assert(HINT_HDR_SIZE == 8 + 4 + 4 + 8 + 4 + 4, "hint header layout");
_Static_assert(DATAFILE_HDR_SIZE == 8 + 4 + 4, "data file header layout");

uint32_t rec_size(size_t key_len, size_t value_len)
{
	if (key_len > REC_MAX_KEY || value_len > UINT32_MAX)
		return 0;
	uint64_t total = (uint64_t)REC_HDR_SIZE + key_len + value_len;
	if (total > UINT32_MAX)
		return 0;
	return (uint32_t)total;
}

uint32_t rec_encode(uint8_t *out, uint64_t timestamp, uint8_t flags,
		    const void *key, uint16_t key_len,
		    const void *value, uint32_t value_len)
{
	put_u64(out + 4, timestamp);
	out[12] = flags;
	put_u16(out + 13, key_len);
	put_u32(out + 15, value_len);
	if (key_len)
		memcpy(out + REC_HDR_SIZE, key, key_len);
	if (value_len)
		memcpy(out + REC_HDR_SIZE + key_len, value, value_len);
	uint32_t size = REC_HDR_SIZE + key_len + value_len;
	put_u32(out, crc32c(0, out + 4, size - 4));
	return size;
}

int rec_decode(const uint8_t *buf, size_t avail, uint32_t max_rec, rec_view *out)
{
	if (avail < REC_HDR_SIZE)
		return -EAGAIN;
	uint8_t flags = buf[12];
	uint16_t klen = get_u16(buf + 13);
	uint32_t vlen = get_u32(buf + 15);
	uint64_t size = (uint64_t)REC_HDR_SIZE + klen + vlen;
	if (flags & ~REC_FLAGS_KNOWN)
		return DKV_ECORRUPT;
	if ((flags & REC_FLAG_TOMBSTONE) && vlen != 0)
		return DKV_ECORRUPT;
	if (size > UINT32_MAX || (max_rec && size > max_rec))
		return DKV_ECORRUPT;
	if (size > avail)
		return -EAGAIN;
	if (crc32c(0, buf + 4, size - 4) != get_u32(buf))
		return DKV_ECORRUPT;
	out->timestamp = get_u64(buf + 4);
	out->flags = flags;
	out->key_len = klen;
	out->value_len = vlen;
	out->key = buf + REC_HDR_SIZE;
	out->value = buf + REC_HDR_SIZE + klen;
	out->size = (uint32_t)size;
	return 0;
}

void datafile_header_encode(uint8_t *out)
{
	memcpy(out, DATAFILE_MAGIC, 8);
	put_u32(out + 8, DATAFILE_VERSION);
	put_u32(out + 12, crc32c(0, out, 12));
}

int datafile_header_check(const uint8_t *buf, size_t avail)
{
	if (avail < DATAFILE_HDR_SIZE)
		return -EAGAIN;
	if (memcmp(buf, DATAFILE_MAGIC, 8) != 0 || crc32c(0, buf, 12) != get_u32(buf + 12))
		return DKV_ECORRUPT;
	if (get_u32(buf + 8) != DATAFILE_VERSION)
		return DKV_EVERSION;
	return 0;
}

uint32_t hint_entry_size(uint16_t key_len)
{
	return HINT_ENTRY_HDR_SIZE + key_len;
}

uint32_t hint_entry_encode(uint8_t *out, uint64_t timestamp, uint32_t offset,
			   uint32_t size, uint8_t flags, const void *key, uint16_t key_len)
{
	put_u64(out, timestamp);
	put_u32(out + 8, offset);
	put_u32(out + 12, size);
	out[16] = flags;
	put_u16(out + 17, key_len);
	if (key_len)
		memcpy(out + HINT_ENTRY_HDR_SIZE, key, key_len);
	return HINT_ENTRY_HDR_SIZE + key_len;
}

void hint_header_encode(uint8_t *out, uint32_t count, uint64_t data_size, uint32_t entries_crc)
{
	memcpy(out, HINT_MAGIC, 8);
	put_u32(out + 8, HINT_VERSION);
	put_u32(out + 12, count);
	put_u64(out + 16, data_size);
	put_u32(out + 24, entries_crc);
	put_u32(out + 28, crc32c(0, out, 28));
}

int hint_header_decode(const uint8_t *buf, size_t avail, hint_header *out)
{
	if (avail < HINT_HDR_SIZE)
		return -EAGAIN;
	if (memcmp(buf, HINT_MAGIC, 8) != 0 || crc32c(0, buf, 28) != get_u32(buf + 28))
		return DKV_ECORRUPT;
	out->version = get_u32(buf + 8);
	if (out->version != HINT_VERSION)
		return DKV_EVERSION;
	out->count = get_u32(buf + 12);
	out->data_size = get_u64(buf + 16);
	out->entries_crc = get_u32(buf + 24);
	return 0;
}

int hint_entry_decode(const uint8_t *buf, size_t avail, hint_entry *out)
{
	if (avail < HINT_ENTRY_HDR_SIZE)
		return -EAGAIN;
	out->timestamp = get_u64(buf);
	out->offset = get_u32(buf + 8);
	out->size = get_u32(buf + 12);
	out->flags = buf[16];
	out->key_len = get_u16(buf + 17);
	if (out->flags & ~REC_FLAGS_KNOWN)
		return DKV_ECORRUPT;
	if ((uint64_t)out->size < (uint64_t)REC_HDR_SIZE + out->key_len)
		return DKV_ECORRUPT;
	if ((out->flags & REC_FLAG_TOMBSTONE) && out->size != REC_HDR_SIZE + out->key_len)
		return DKV_ECORRUPT;
	if (avail < HINT_ENTRY_HDR_SIZE + (size_t)out->key_len)
		return -EAGAIN;
	out->key = buf + HINT_ENTRY_HDR_SIZE;
	return (int)(HINT_ENTRY_HDR_SIZE + out->key_len);
}

int hint_validate(const uint8_t *buf, size_t len, hint_header *hdr)
{
	int rc = hint_header_decode(buf, len, hdr);
	if (rc == -EAGAIN)
		return DKV_ECORRUPT;
	if (rc)
		return rc;
	if (crc32c(0, buf + HINT_HDR_SIZE, len - HINT_HDR_SIZE) != hdr->entries_crc)
		return DKV_ECORRUPT;
	size_t pos = HINT_HDR_SIZE;
	uint64_t prev_end = DATAFILE_HDR_SIZE;
	for (uint32_t i = 0; i < hdr->count; i++) {
		hint_entry e;
		int n = hint_entry_decode(buf + pos, len - pos, &e);
		if (n < 0)
			return DKV_ECORRUPT;
		/* Records are listed in file order and must not overlap. */
		if (e.offset < prev_end || (uint64_t)e.offset + e.size > hdr->data_size)
			return DKV_ECORRUPT;
		prev_end = (uint64_t)e.offset + e.size;
		pos += (size_t)n;
	}
	if (pos != len)
		return DKV_ECORRUPT;
	return 0;
}
