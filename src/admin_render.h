/*
 * admin_render.h -- the output of dynkv-admin: an INFO map (the result of
 * an ADMIN request, dynkv-protocol(7)) as JSON or as text for people.
 *
 * WHAT IT IS FOR
 *   dynkv-admin(1) asks a node for a command's result and prints it.  The
 *   node and the program are released separately, so the renderers take
 *   whatever map they are given: a key the schema of man/dynkv-admin.1
 *   names but the map lacks shows as "-" (or is left out), a key of the
 *   wrong type is shown as what it is, and keys the schema does not name
 *   are printed after the table, generically.  Nothing in the map is a
 *   reason to crash or to print something a terminal would interpret:
 *   text output escapes control characters and bytes that are not UTF-8.
 *
 * THE JSON MAPPING (exact, so that scripts can rely on the schema)
 *   map -> object (keys in the map's order; a key that is an integer,
 *   float, bool or nil becomes the string of its JSON text), array ->
 *   array, str -> string (invalid UTF-8 bytes become U+FFFD), bin ->
 *   string of its base64 (RFC 4648, padded), integers -> numbers, written
 *   exactly (all 64 bits), float -> number with the fewest digits that
 *   read back as the same value, always with a '.' or an exponent (NaN and
 *   infinities, which JSON lacks, -> null), bool -> true/false, nil ->
 *   null.  One object, then a newline.
 *
 * INPUT
 *   The map's bytes are read with the bounded reader of mpr.h and are
 *   refused (DKV_EPROTO, nothing written) unless they are exactly one map,
 *   nested at most ADMIN_RENDER_MAX_DEPTH deep, with keys that are str,
 *   integers, floats, bools or nil, and no extension types.  dynkv_admin() returns only such maps.  Output is
 *   made in memory and written whole, so a refused map writes nothing.
 *   Everything here is a pure function of its arguments: no state.
 */
#ifndef DKV_ADMIN_RENDER_H
#define DKV_ADMIN_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* = PROTO_MAX_INFO_DEPTH: the deepest map the protocol lets through. */
#define ADMIN_RENDER_MAX_DEPTH 16u

/* Write map[0..len) to out as one JSON object and a newline.  0,
 * DKV_EPROTO (not a map as above), -ENOMEM, or -EIO (writing failed). */
int admin_render_json(FILE *out, const void *map, size_t len);

/* Write map[0..len) to out for people, laid out for command ("members",
 * "ring", "status", "preflist", "join", "leave", "remove"; any other, or NULL:
 * generic "key: value" lines, nested maps and arrays indented).  Returns
 * as admin_render_json(). */
int admin_render_text(FILE *out, const char *command, const void *map, size_t len);

/* The outcome of a command whose result is {"ok": bool, "message": str}:
 * false iff the map has "ok" and it is false.  If msg is not NULL
 * (msglen > 0) it gets "message", escaped as text output is, or "" if
 * there is none (cut to fit). */
bool admin_render_ok(const void *map, size_t len, char *msg, size_t msglen);

/* The addresses of the members of a `members` answer that are not removed
 * (*addrs malloc'd, each string too; free with admin_render_free_addrs).
 * 0, DKV_EPROTO or -ENOMEM. */
int admin_render_member_addrs(const void *map, size_t len, char ***addrs, size_t *n);
void admin_render_free_addrs(char **addrs, size_t n);

/* The cluster's capacity from every member's `capacity` answer (maps[i],
 * NULL for a member that did not answer, addrs[i] its address), as one
 * map written to *out (malloc'd): {"verdict": "grow"|"shrink"|"hold",
 * "reason": text, "nodes": [...], "unreachable": [addr, ...]} -- grow when a
 * member says grow, shrink when every member says shrink and there are
 * more members than n_val, else hold (capacity.h).  0, DKV_EPROTO or
 * -ENOMEM. */
int admin_render_capacity(const void *const *maps, const size_t *lens, char *const *addrs,
			  size_t n, void **out, size_t *outlen);

#endif /* DKV_ADMIN_RENDER_H */
