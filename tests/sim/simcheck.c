/*
 * simcheck.c -- the fault suite's checker: SAME, KNOWN, KEPT and GONE of
 * simfault.h, on every primary's own copy of every key.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "object.h"
#include "simint.h"

static bool is_put(sf_kind k)
{
	return k == SF_PUT || k == SF_PUT_CTX || k == SF_PUT_REPLACE;
}

static bool is_write(sf_kind k)
{
	return k != SF_GET;
}

/* Acknowledgements a write needed: max(W, PW), W's default quorum 2. */
static size_t acks_needed(const sf_op *w)
{
	size_t n = w->o.w > 0 ? (size_t)w->o.w : 2;

	if (w->o.pw > 0 && (size_t)w->o.pw > n)
		n = (size_t)w->o.pw;
	return n;
}

/* EXEMPT: enough nodes lost power while w may have been unsynced on the
 * nodes that acknowledged it. */
static bool exempt(const sf *s, const sf_op *w)
{
	uint64_t span = s->sync_interval + SF_SYNC_DELAY_MAX + s->longest_pause + 100;
	uint32_t lost = 0;
	size_t count = 0;

	if (s->sync_always || w->end == SF_NEVER)
		return false;
	for (size_t k = 0; k < s->npower; k++) {
		const sf_power *p = &s->power[k];

		if (p->at >= w->issue && p->at <= w->end + span && !(lost & 1u << p->node)) {
			lost |= 1u << p->node;
			count++;
		}
	}
	return count >= acks_needed(w);
}

/* COVERED: some other write of w's key could have superseded w. */
static long covered_by(const sf *s, size_t wi)
{
	const sf_op *w = &s->op[wi];

	for (size_t xi = 0; xi < s->nops; xi++) {
		const sf_op *x = &s->op[xi];

		if (xi == wi || x->key != w->key || !is_write(x->kind))
			continue;
		/* A replace-mode write supersedes what its coordinator read and
		 * held when it ran: any time before its answer -- or, when it
		 * failed or timed out, at any time at all (a paused
		 * coordinator, or one whose answer was lost, may apply it long
		 * after the client heard the error). */
		if (x->o.replace && (!x->ok || x->end > w->issue))
			return (long)xi;
		if (x->get_from >= 0) {
			const sf_op *g = &s->op[x->get_from];

			for (size_t k = 0; k < g->nseen; k++)
				if (g->seen[k] == wi)
					return (long)xi;
		}
	}
	return -1;
}

/* The live values of obj as a printable list, for messages. */
static const char *describe(const object *obj, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	if (obj == NULL) {
		snprintf(buf, len, "(nothing)");
		return buf;
	}
	for (size_t i = 0; i < object_sibling_count(obj) && at + 1 < len; i++) {
		const object_sibling *sb = object_sibling_at(obj, i);

		if (sb->tombstone)
			at += (size_t)snprintf(buf + at, len - at, "%s(tombstone)", i ? " " : "");
		else
			at += (size_t)snprintf(buf + at, len - at, "%s%.*s", i ? " " : "",
					       (int)sb->value_len, (const char *)sb->value);
	}
	if (at == 0)
		snprintf(buf, len, "(empty)");
	return buf;
}

static bool holds_value(const object *obj, const char *v)
{
	size_t len = strlen(v);

	for (size_t i = 0; obj != NULL && i < object_sibling_count(obj); i++) {
		const object_sibling *sb = object_sibling_at(obj, i);

		if (!sb->tombstone && sb->value_len == len && memcmp(sb->value, v, len) == 0)
			return true;
	}
	return false;
}

static void check_key(sf *s, int key)
{
	object *obj[SF_MAXN] = { 0 };
	size_t prim[SF_MAXN], np = 0;
	char name[16], a[512], b[512];
	msgpack_sbuffer enc[SF_MAXN];

	snprintf(name, sizeof(name), "k%d", key);
	for (size_t i = 0; i < s->n; i++) {
		bool primary = false;
		object *o = NULL;
		int rc = node_local_object(s->nd[i], name, strlen(name), &o, &primary);

		if (rc != 0) {
			sf_fail(s, "%s: node %zu cannot read its copy (error %d)", name, i, rc);
			object_free(o);
			continue;
		}
		if (!primary) {
			object_free(o);
			continue;
		}
		obj[np] = o;
		prim[np++] = i;
	}
	if (np != (s->n < 3 ? s->n : 3))
		sf_fail(s, "%s: %zu primaries, not 3", name, np);
	/* SAME */
	for (size_t k = 0; k < np; k++) {
		msgpack_sbuffer_init(&enc[k]);
		if (obj[k] != NULL && object_encode(obj[k], &enc[k]) != 0)
			abort();
		if (k > 0 && (enc[k].size != enc[0].size ||
			      (enc[k].size > 0 && memcmp(enc[k].data, enc[0].data, enc[0].size) != 0)))
			sf_fail(s, "SAME: %s differs between primaries: node %zu holds %s, node %zu "
				"holds %s", name, prim[0], describe(obj[0], a, sizeof(a)), prim[k],
				describe(obj[k], b, sizeof(b)));
	}
	/* KNOWN */
	for (size_t k = 0; k < np; k++)
		for (size_t i = 0; obj[k] != NULL && i < object_sibling_count(obj[k]); i++) {
			const object_sibling *sb = object_sibling_at(obj[k], i);
			int vk;
			long w;

			if (sb->tombstone)
				continue;
			w = sf_value_op(s, sb->value, sb->value_len, &vk);
			if (w < 0 || vk != key || !is_put(s->op[w].kind))
				sf_fail(s, "KNOWN: %s at node %zu holds '%.*s', which no put of %s wrote",
					name, prim[k], (int)sb->value_len, (const char *)sb->value, name);
		}
	/* KEPT */
	for (size_t wi = 0; wi < s->nops; wi++) {
		const sf_op *w = &s->op[wi];

		if (w->key != key || !is_put(w->kind) || !w->ok)
			continue;
		for (size_t k = 0; k < np; k++) {
			if (holds_value(obj[k], w->value) || covered_by(s, wi) >= 0)
				continue;
			if (exempt(s, w)) {
				s->res->exempt++;
				break;
			}
			sf_fail(s, "KEPT: acknowledged %s %s (op %zu at node %zu, W %d PW %d, sent "
				"%" PRIu64 " ms, acked %" PRIu64 " ms) is missing at primary node %zu, "
				"which holds %s; no write could have superseded it",
				sf_kind_name(w->kind), w->value, wi, w->node, w->o.w, w->o.pw, w->issue,
				w->end, prim[k], describe(obj[k], a, sizeof(a)));
		}
	}
	/* GONE */
	for (size_t xi = 0; xi < s->nops; xi++) {
		const sf_op *x = &s->op[xi];
		const sf_op *g;

		if (x->key != key || !x->ok || x->get_from < 0 || exempt(s, x))
			continue;
		g = &s->op[x->get_from];
		for (size_t j = 0; j < g->nseen; j++)
			for (size_t k = 0; k < np; k++)
				if (holds_value(obj[k], s->op[g->seen[j]].value))
					sf_fail(s, "GONE: %s came back at node %zu: acknowledged %s op %zu "
						"(acked %" PRIu64 " ms) carried the context of get op %ld, "
						"which showed it", s->op[g->seen[j]].value, prim[k],
						sf_kind_name(x->kind), xi, x->end, x->get_from);
	}
	for (size_t k = 0; k < np; k++) {
		msgpack_sbuffer_destroy(&enc[k]);
		object_free(obj[k]);
	}
}

void sf_check(sf *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->nd[i] == NULL) {
			sf_fail(s, "node %zu is not running at the check", i);
			return;
		}
	for (int key = 0; key < (int)s->nkeys; key++)
		check_key(s, key);
}
