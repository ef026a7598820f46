/*
 * msgfield.h -- field k of a decoded msgpack map (an INFO answer), or
 * NULL: shared by the cluster rig (crig.c) and the fault suite
 * (tests/sim/), which cannot link Criterion's rig.
 */
#ifndef DKV_MSGFIELD_H
#define DKV_MSGFIELD_H

#include <msgpack.h>
#include <string.h>

static inline const msgpack_object *msg_field(const msgpack_object *map, const char *k)
{
	if (map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(k) &&
		    memcmp(kv->key.via.str.ptr, k, kv->key.via.str.size) == 0)
			return &kv->val;
	}
	return NULL;
}

#endif /* DKV_MSGFIELD_H */
