/*
 * faultcheck.c -- the fault suite's checker (tests/faults/README): what
 * faultload did, against what every primary of every key holds on disk
 * once the cluster has healed and stopped.
 *
 *   faultcheck --log FILE --faults FILE --keys K --ring-size R --n-val N
 *              ID=DATA_DIR...
 *
 * The IDs are the cluster's members at the end (each with its data
 * directory); the ring is built from them as every node builds it
 * (ring.h), and each key's primaries' copies are read from their stores
 * (vnode_read), as the simulated suite's checker reads them
 * (tests/sim/simcheck.c; the rules are simfault.h's):
 *   - SAME: the primaries hold equal objects;
 *   - KNOWN: every value held is one a put of that key wrote;
 *   - KEPT: every acknowledged put is a sibling at every primary, unless
 *     COVERED (another write could have superseded it: a replace-mode one
 *     answered after the put was sent, one that failed or timed out, or
 *     one carrying the context of a get that showed it) or EXEMPT (at
 *     least as many nodes as acknowledged it -- max(W, PW) -- had their
 *     data directory wiped after it was sent);
 *   - GONE: no value a get showed comes back once an acknowledged,
 *     non-exempt write carrying that get's context superseded it.
 * Counted as: lost (KEPT), resurrected (GONE), unexpected (KNOWN),
 * differing (SAME), exempt.
 *
 * THE FAULTS FILE: one line per fault the nemesis applied:
 *   class start_ms end_ms node...
 * Per class it prints how many were applied, how many operations were in
 * flight during one (sent before its end, answered -- or, unanswered,
 * timed out -- after its start), how many of those were acknowledged, and
 * the failures among them.  "wipe" lines make EXEMPT.
 *
 * Exit: 0 when every check holds; 1 when one fails (the first failures
 * are printed); 2 on a usage or input error.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "dkv_config.h"
#include "object.h"
#include "ring.h"
#include "vnode.h"

#define MAX_NODES   16
#define MAX_FAULTS  4096
#define MAX_CLASSES 16
#define MAX_SEEN    64
#define SLACK_MS    5000       /* an unanswered op: in flight this long after it was sent */

typedef enum kind { K_GET, K_PUT, K_PUT_CTX, K_PUT_REPLACE, K_DEL_CTX, K_DEL_REPLACE, K_NKINDS } kind;
static const char *const kind_name[] = { "get", "put", "put-ctx", "put-replace", "del-ctx",
					 "del-replace" };

typedef struct op {
	bool logged;
	kind k;
	unsigned key;
	uint64_t issue, end;    /* end 0: never answered */
	bool ok;
	int w, pw;
	int64_t get_from;
	size_t nseen;
	int64_t *seen;
	bool failed_check;      /* some check failed on it */
} op;

typedef struct fault {
	char cls[32];
	uint64_t start, end;
	char nodes[256];
} fault;

static op *ops;
static size_t nops;
static size_t **bykey, *nbykey;    /* each key's op ids, in id order */
static fault faults[MAX_FAULTS];
static size_t nfaults;
static unsigned nkeys;
static size_t nnodes;
static char *ids[MAX_NODES];
static vnode_set *vs[MAX_NODES];

static uint64_t n_lost, n_resurrected, n_unexpected, n_differing, n_exempt, n_failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	if (n_failures++ >= 30)
		return;
	va_start(ap, fmt);
	fputs("faultcheck: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("faultcheck: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static bool is_put(kind k)
{
	return k == K_PUT || k == K_PUT_CTX || k == K_PUT_REPLACE;
}

static bool is_write(kind k)
{
	return k != K_GET;
}

static bool is_replace(kind k)
{
	return k == K_PUT_REPLACE || k == K_DEL_REPLACE;
}

static void read_log(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, lineno = 0;

	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *tok[10 + MAX_SEEN + 1];
		size_t nt = 0;
		uint64_t id;
		op *o;

		lineno++;
		for (char *t = strtok_r(line, "\t\n", &save); t != NULL && nt < sizeof(tok) / sizeof(tok[0]);
		     t = strtok_r(NULL, "\t\n", &save))
			tok[nt++] = t;
		if (nt < 11)
			die("%s:%zu: %zu fields, not at least 11", path, lineno, nt);
		id = strtoull(tok[0], NULL, 10);
		if (id > 100000000)
			die("%s:%zu: op id %" PRIu64 " out of range", path, lineno, id);
		if (id >= nops) {
			size_t n = (size_t)id + 1024;
			op *grown = realloc(ops, n * sizeof(*ops));

			if (grown == NULL)
				die("out of memory");
			memset(grown + nops, 0, (n - nops) * sizeof(*ops));
			ops = grown;
			nops = n;
		}
		o = &ops[id];
		if (o->logged)
			die("%s:%zu: op %" PRIu64 " logged twice", path, lineno, id);
		o->logged = true;
		o->k = K_NKINDS;
		for (int k = 0; k < K_NKINDS; k++)
			if (strcmp(tok[1], kind_name[k]) == 0)
				o->k = (kind)k;
		if (o->k == K_NKINDS)
			die("%s:%zu: unknown kind %s", path, lineno, tok[1]);
		o->key = (unsigned)strtoul(tok[2], NULL, 10);
		if (o->key >= nkeys)
			die("%s:%zu: key %u, not below --keys %u", path, lineno, o->key, nkeys);
		o->issue = strtoull(tok[4], NULL, 10);
		o->end = strtoull(tok[5], NULL, 10);
		o->ok = strcmp(tok[6], "1") == 0;
		o->w = atoi(tok[7]);
		o->pw = atoi(tok[8]);
		o->get_from = strtoll(tok[9], NULL, 10);
		o->nseen = strtoul(tok[10], NULL, 10);
		if (o->nseen > MAX_SEEN || nt != 11 + o->nseen)
			die("%s:%zu: %zu values seen but %zu fields", path, lineno, o->nseen, nt);
		if (o->nseen > 0 && (o->seen = calloc(o->nseen, sizeof(*o->seen))) == NULL)
			die("out of memory");
		for (size_t i = 0; i < o->nseen; i++)
			o->seen[i] = strtoll(tok[11 + i], NULL, 10);
	}
	free(line);
	fclose(f);
	/* ids are dense: a hole is an op that was never logged */
	while (nops > 0 && !ops[nops - 1].logged)
		nops--;
	for (size_t i = 0; i < nops; i++)
		if (!ops[i].logged)
			die("%s: op %zu is missing from the log", path, i);
	if ((bykey = calloc(nkeys, sizeof(*bykey))) == NULL ||
	    (nbykey = calloc(nkeys, sizeof(*nbykey))) == NULL)
		die("out of memory");
	for (size_t i = 0; i < nops; i++) {
		unsigned k = ops[i].key;
		size_t *grown = realloc(bykey[k], (nbykey[k] + 1) * sizeof(**bykey));

		if (grown == NULL)
			die("out of memory");
		bykey[k] = grown;
		bykey[k][nbykey[k]++] = i;
	}
	for (size_t i = 0; i < nops; i++)
		if (ops[i].get_from >= (int64_t)nops ||
		    (ops[i].get_from >= 0 && ops[ops[i].get_from].k != K_GET))
			die("%s: op %zu carries the context of op %" PRId64 ", not a get", path, i,
			    ops[i].get_from);
}

static void read_faults(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];

	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		fault *ft;
		int at = 0;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (nfaults == MAX_FAULTS)
			die("%s: more than %d faults", path, MAX_FAULTS);
		ft = &faults[nfaults];
		if (sscanf(line, "%31s %" SCNu64 " %" SCNu64 " %n", ft->cls, &ft->start, &ft->end,
			   &at) < 3)
			die("%s: bad line: %s", path, line);
		snprintf(ft->nodes, sizeof(ft->nodes), "%s", line + at);
		ft->nodes[strcspn(ft->nodes, "\n")] = '\0';
		nfaults++;
	}
	fclose(f);
}

/* Acknowledgements a write needed. */
static int acks_needed(const op *w)
{
	return w->pw > w->w ? w->pw : w->w;
}

/* EXEMPT: as many nodes as acknowledged w had their data wiped since.
 * Every wipe is of a different node: a wiped node's identity is removed
 * for good (its address comes back as a new one). */
static bool exempt(const op *w)
{
	int count = 0;

	for (size_t i = 0; i < nfaults; i++)
		count += strcmp(faults[i].cls, "wipe") == 0 && faults[i].start >= w->issue;
	return count >= acks_needed(w);
}

/* COVERED: some other write of w's key could have superseded w. */
static bool covered(size_t wi)
{
	const op *w = &ops[wi];

	for (size_t j = 0; j < nbykey[w->key]; j++) {
		size_t xi = bykey[w->key][j];
		const op *x = &ops[xi];

		if (xi == wi || !is_write(x->k))
			continue;
		if (!x->ok)
			return true;
		if (is_replace(x->k) && x->end > w->issue)
			return true;
		if (x->get_from >= 0) {
			const op *g = &ops[x->get_from];

			for (size_t m = 0; m < g->nseen; m++)
				if (g->seen[m] == (int64_t)wi)
					return true;
		}
	}
	return false;
}

/* The op id a value names ("k<key>#w<id>|..."), or -1. */
static int64_t value_op(const uint8_t *v, size_t len, unsigned *key)
{
	char buf[64];
	unsigned k;
	int64_t id;
	int n = 0;

	snprintf(buf, sizeof(buf), "%.*s", (int)(len < 63 ? len : 63), (const char *)v);
	if (sscanf(buf, "k%u#w%" SCNd64 "|%n", &k, &id, &n) != 2 || n == 0)
		return -1;
	*key = k;
	return id;
}

static bool holds(const object *obj, int64_t id)
{
	for (size_t i = 0; obj != NULL && i < object_sibling_count(obj); i++) {
		const object_sibling *sb = object_sibling_at(obj, i);
		unsigned k;

		if (!sb->tombstone && value_op(sb->value, sb->value_len, &k) == id)
			return true;
	}
	return false;
}

/* The siblings of obj by the writes that made them ("w12 w40 del"). */
static const char *describe(const object *obj, char *buf, size_t len)
{
	size_t n = obj != NULL ? object_sibling_count(obj) : 0, at = 0;

	snprintf(buf, len, "%s", obj == NULL ? "(nothing)" : "(empty)");
	for (size_t i = 0; i < n && at + 24 < len; i++) {
		const object_sibling *sb = object_sibling_at(obj, i);
		unsigned k;
		int64_t id = sb->tombstone ? -1 : value_op(sb->value, sb->value_len, &k);

		if (sb->tombstone)
			at += (size_t)snprintf(buf + at, len - at, "%sdel", at ? " " : "");
		else if (id >= 0)
			at += (size_t)snprintf(buf + at, len - at, "%sk%u#w%" PRId64, at ? " " : "", k, id);
		else
			at += (size_t)snprintf(buf + at, len - at, "%s(%zu unknown bytes)", at ? " " : "",
					       sb->value_len);
	}
	return buf;
}

static void check_key(const ring *rg, unsigned key)
{
	object *obj[MAX_NODES] = { 0 };
	msgpack_sbuffer enc[MAX_NODES];
	size_t prim[MAX_NODES], np = 0;
	char name[16], a[1024], b[1024];
	uint32_t p;
	const uint32_t *pl;
	size_t n = ring_n(rg) < ring_members(rg) ? ring_n(rg) : ring_members(rg);
	bool differs = false;

	snprintf(name, sizeof(name), "k%u", key);
	p = ring_partition(ring_key_hash(name, strlen(name)), ring_size(rg));
	pl = ring_preflist(rg, p);
	for (size_t i = 0; i < n; i++) {
		const char *id = ring_member_id(rg, pl[i]);
		size_t nd = 0;
		int rc;

		while (nd < nnodes && strcmp(ids[nd], id) != 0)
			nd++;
		rc = vnode_read(vs[nd], p, name, strlen(name), &obj[np]);
		if (rc != 0)
			fail("%s: %s cannot read its copy: error %d", name, id, rc);
		prim[np++] = nd;
	}
	/* SAME */
	for (size_t k = 0; k < np; k++) {
		msgpack_sbuffer_init(&enc[k]);
		if (obj[k] != NULL && object_encode(obj[k], &enc[k]) != 0)
			die("cannot encode an object");
		if (k > 0 && (enc[k].size != enc[0].size ||
			      (enc[k].size > 0 && memcmp(enc[k].data, enc[0].data, enc[0].size) != 0))) {
			fail("SAME: %s differs between primaries: %s holds %s, %s holds %s", name,
			     ids[prim[0]], describe(obj[0], a, sizeof(a)), ids[prim[k]],
			     describe(obj[k], b, sizeof(b)));
			differs = true;
		}
	}
	n_differing += differs;
	/* KNOWN */
	for (size_t k = 0; k < np; k++)
		for (size_t i = 0; obj[k] != NULL && i < object_sibling_count(obj[k]); i++) {
			const object_sibling *sb = object_sibling_at(obj[k], i);
			unsigned vk = 0;
			int64_t w;

			if (sb->tombstone)
				continue;
			w = value_op(sb->value, sb->value_len, &vk);
			if (w < 0 || (size_t)w >= nops || vk != key || !is_put(ops[w].k) ||
			    ops[w].key != key) {
				n_unexpected++;
				fail("KNOWN: %s at %s holds '%.40s', which no put of %s wrote", name,
				     ids[prim[k]], describe(obj[k], a, sizeof(a)), name);
			}
		}
	/* KEPT */
	for (size_t j = 0; j < nbykey[key]; j++) {
		size_t wi = bykey[key][j];
		op *w = &ops[wi];

		if (!is_put(w->k) || !w->ok)
			continue;
		for (size_t k = 0; k < np; k++) {
			if (holds(obj[k], (int64_t)wi) || covered(wi))
				continue;
			if (exempt(w)) {
				n_exempt++;
				break;
			}
			n_lost++;
			w->failed_check = true;
			fail("KEPT: acknowledged %s %s#w%zu (W %d PW %d, sent %" PRIu64 ", acked %"
			     PRIu64 ") is missing at primary %s, which holds %s; no write could have "
			     "superseded it", kind_name[w->k], name, wi, w->w, w->pw, w->issue, w->end,
			     ids[prim[k]], describe(obj[k], a, sizeof(a)));
			break;
		}
	}
	/* GONE */
	for (size_t jx = 0; jx < nbykey[key]; jx++) {
		size_t xi = bykey[key][jx];
		op *x = &ops[xi];
		const op *g;

		if (!x->ok || x->get_from < 0 || exempt(x))
			continue;
		g = &ops[x->get_from];
		for (size_t j = 0; j < g->nseen; j++)
			for (size_t k = 0; k < np; k++)
				if (g->seen[j] >= 0 && holds(obj[k], g->seen[j])) {
					n_resurrected++;
					x->failed_check = true;
					fail("GONE: %s#w%" PRId64 " came back at %s: acknowledged %s op %zu "
					     "(acked %" PRIu64 ") carried the context of get op %" PRId64
					     ", which showed it", name, g->seen[j], ids[prim[k]],
					     kind_name[x->k], xi, x->end, x->get_from);
					break;
				}
	}
	for (size_t k = 0; k < np; k++) {
		msgpack_sbuffer_destroy(&enc[k]);
		object_free(obj[k]);
	}
}

/* Per fault class: applied, ops in flight during one, acknowledged, failed. */
static void report_classes(void)
{
	char cls[MAX_CLASSES][32];
	size_t ncls = 0;

	for (size_t i = 0; i < nfaults; i++) {
		size_t c = 0;

		while (c < ncls && strcmp(cls[c], faults[i].cls) != 0)
			c++;
		if (c == ncls && ncls < MAX_CLASSES)
			snprintf(cls[ncls++], sizeof(cls[0]), "%.31s", faults[i].cls);
	}
	printf("faultcheck: %-14s %8s %10s %12s %8s\n", "fault", "applied", "ops during",
	       "acked during", "failed");
	for (size_t c = 0; c < ncls; c++) {
		uint64_t applied = 0, during = 0, acked = 0, failed = 0;

		for (size_t i = 0; i < nfaults; i++)
			applied += strcmp(faults[i].cls, cls[c]) == 0;
		for (size_t oi = 0; oi < nops; oi++) {
			const op *o = &ops[oi];
			uint64_t until = o->end ? o->end : o->issue + SLACK_MS;
			bool in = false;

			for (size_t i = 0; i < nfaults && !in; i++)
				in = strcmp(faults[i].cls, cls[c]) == 0 && o->issue <= faults[i].end &&
				     until >= faults[i].start;
			if (!in)
				continue;
			during++;
			acked += o->ok;
			failed += o->failed_check;
		}
		printf("faultcheck: %-14s %8" PRIu64 " %10" PRIu64 " %12" PRIu64 " %8" PRIu64 "\n",
		       cls[c], applied, during, acked, failed);
	}
}

static unsigned num(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > 1000000)
		die("%s: not a number from 1 to 1000000", s);
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	const char *log_path = NULL, *faults_path = NULL;
	unsigned ring_sz = 0, n_val = 0;
	char *dirs[MAX_NODES];
	ring *rg;
	dkv_config cfg;
	object_limits olim;
	uint64_t acked = 0, by_kind[K_NKINDS] = { 0 }, ok_kind[K_NKINDS] = { 0 };
	int rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *eq;

		if (a[0] != '-') {
			if (nnodes == MAX_NODES || (eq = strchr(a, '=')) == NULL || eq == a || !eq[1])
				die("%s: not ID=DATA_DIR (at most %d)", a, MAX_NODES);
			ids[nnodes] = strndup(a, (size_t)(eq - a));
			dirs[nnodes++] = eq + 1;
			continue;
		}
		if (v == NULL)
			die("%s needs a value", a);
		if (strcmp(a, "--log") == 0)
			log_path = v;
		else if (strcmp(a, "--faults") == 0)
			faults_path = v;
		else if (strcmp(a, "--keys") == 0)
			nkeys = num(v);
		else if (strcmp(a, "--ring-size") == 0)
			ring_sz = num(v);
		else if (strcmp(a, "--n-val") == 0)
			n_val = num(v);
		else
			die("unknown option %s", a);
		i++;
	}
	if (log_path == NULL || faults_path == NULL || nkeys == 0 || ring_sz == 0 || n_val == 0 ||
	    nnodes == 0)
		die("usage: faultcheck --log FILE --faults FILE --keys K --ring-size R --n-val N "
		    "ID=DATA_DIR...");
	read_log(log_path);
	read_faults(faults_path);
	if (ring_build(&rg, (const char *const *)ids, nnodes, ring_sz, n_val) != 0)
		die("cannot build the ring of %zu members", nnodes);
	if (dkv_config_init(&cfg) != 0)
		die("out of memory");
	object_limits_init(&olim);
	olim.max_value = cfg.max_frame;
	for (size_t i = 0; i < nnodes; i++) {
		vnode_config vc = { 0 };

		vc.dir = dirs[i];
		vc.ring_size = ring_sz;
		vc.actor = 1;
		vc.max_key_size = (uint32_t)cfg.max_key_size;
		vc.max_object = cfg.max_frame;
		vc.vclock_max = cfg.vclock_max;
		vc.olim = olim;
		if ((rc = vnode_set_open(&vs[i], &vc)) != 0)
			die("%s: cannot open its stores: error %d", dirs[i], rc);
	}
	for (unsigned k = 0; k < nkeys; k++)
		check_key(rg, k);
	for (size_t i = 0; i < nops; i++) {
		by_kind[ops[i].k]++;
		ok_kind[ops[i].k] += ops[i].ok;
		acked += ops[i].ok;
	}
	printf("faultcheck: %zu operations, %" PRIu64 " acknowledged:", nops, acked);
	for (int k = 0; k < K_NKINDS; k++)
		printf(" %s %" PRIu64 "/%" PRIu64, kind_name[k], ok_kind[k], by_kind[k]);
	printf("\n");
	report_classes();
	printf("faultcheck: %zu members, %u keys: lost %" PRIu64 ", resurrected %" PRIu64
	       ", unexpected %" PRIu64 ", differing %" PRIu64 " (exempt %" PRIu64 ")\n",
	       nnodes, nkeys, n_lost, n_resurrected, n_unexpected, n_differing, n_exempt);
	for (size_t i = 0; i < nnodes; i++) {
		vnode_set_close(vs[i]);
		free(ids[i]);
	}
	ring_free(rg);
	dkv_config_free(&cfg);
	for (size_t i = 0; i < nops; i++)
		free(ops[i].seen);
	for (unsigned k = 0; k < nkeys; k++)
		free(bykey[k]);
	free(bykey);
	free(nbykey);
	free(ops);
	return n_failures > 0 ? 1 : 0;
}
