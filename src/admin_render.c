#include "config.h"
/*
 * admin_render.c -- INFO maps as JSON and as text; see admin_render.h and,
 * for the layouts, man/dynkv-admin.1 (a change to one is a change to both).
 *
 * Every read goes through an mpr cursor over the map's bytes, so a
 * declared length never reaches past them.  The JSON writer is also the
 * validator: the text renderers run it (into a discarded buffer) first,
 * and after that may look keys up freely.
 */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "admin_render.h"
#include "cli.h"
#include "error.h"
#include "mpr.h"

/* --- reading -------------------------------------------------------------- */

/* The kinds of value, from the first byte. */
enum kind { K_NIL, K_BOOL, K_UINT, K_INT, K_FLOAT, K_STR, K_BIN, K_ARRAY, K_MAP, K_BAD };

static enum kind kind_of(int t)
{
	if (t < 0)
		return K_BAD;
	if (t <= 0x7f || (t >= 0xcc && t <= 0xcf))
		return K_UINT;
	if (t >= 0xe0 || (t >= 0xd0 && t <= 0xd3))
		return K_INT;
	if ((t & 0xf0) == 0x80 || t == 0xde || t == 0xdf)
		return K_MAP;
	if ((t & 0xf0) == 0x90 || t == 0xdc || t == 0xdd)
		return K_ARRAY;
	if ((t & 0xe0) == 0xa0 || (t >= 0xd9 && t <= 0xdb))
		return K_STR;
	switch (t) {
	case 0xc0: return K_NIL;
	case 0xc2: case 0xc3: return K_BOOL;
	case 0xc4: case 0xc5: case 0xc6: return K_BIN;
	case 0xca: case 0xcb: return K_FLOAT;
	default: return K_BAD;  /* 0xc1, extension types */
	}
}

static bool is_scalar(enum kind k)
{
	return k != K_ARRAY && k != K_MAP && k != K_BAD;
}

/* A float32 or float64 as a double. */
static int rd_float(mpr *r, double *d, bool *single)
{
	int t = mpr_peek(r);
	size_t w = t == 0xca ? 4 : 8;
	uint64_t v = 0;

	if ((t != 0xca && t != 0xcb) || mpr_left(r) < 1 + w)
		return DKV_EPROTO;
	for (size_t i = 1; i <= w; i++)
		v = v << 8 | r->p[i];
	r->p += 1 + w;
	*single = w == 4;
	if (w == 4) {
		uint32_t u = (uint32_t)v;
		float f;

		memcpy(&f, &u, sizeof(f));
		*d = f;
	} else {
		memcpy(d, &v, sizeof(*d));
	}
	return 0;
}

/* Read the header of the map or array (k) at r: *n its pairs or
 * elements. */
static int rd_header(mpr *r, enum kind k, uint64_t *n)
{
	return k == K_MAP ? mpr_map(r, n) : mpr_array(r, n);
}

/* Skip one value (the map was validated: depth and lengths hold). */
static int skip(mpr *r)
{
	return mpr_skip(r, ADMIN_RENDER_MAX_DEPTH + 1) == 0 ? 0 : DKV_EPROTO;
}

/* Position *v at the value of key in the map at m (a cursor at a map);
 * false if there is none. */
static bool find(const mpr *m, const char *key, mpr *v)
{
	mpr r = *m;
	uint64_t n;
	size_t klen = strlen(key);

	if (mpr_map(&r, &n) != 0)
		return false;
	for (uint64_t i = 0; i < n; i++) {
		const char *k;
		size_t len;
		bool hit = false;

		if (kind_of(mpr_peek(&r)) == K_STR) {
			if (mpr_str(&r, SIZE_MAX, &k, &len) != 0)
				return false;
			hit = len == klen && memcmp(k, key, len) == 0;
		} else if (skip(&r) != 0) {
			return false;
		}
		if (hit) {
			*v = r;
			return true;
		}
		if (skip(&r) != 0)
			return false;
	}
	return false;
}

static bool find_kind(const mpr *m, const char *key, enum kind want, mpr *v)
{
	return find(m, key, v) && kind_of(mpr_peek(v)) == want;
}

static bool get_uint(const mpr *m, const char *key, uint64_t *u)
{
	mpr v;

	return find(m, key, &v) && mpr_uint(&v, u) == 0;
}

/* A number of any kind as a double. */
static bool get_number(const mpr *m, const char *key, double *d)
{
	mpr v;
	uint64_t u;
	int64_t i;
	bool single;

	if (!find(m, key, &v))
		return false;
	switch (kind_of(mpr_peek(&v))) {
	case K_UINT: if (mpr_uint(&v, &u) != 0) return false; *d = (double)u; return true;
	case K_INT: if (mpr_int(&v, &i) != 0) return false; *d = (double)i; return true;
	case K_FLOAT: return rd_float(&v, d, &single) == 0;
	default: return false;
	}
}

/* --- text pieces ---------------------------------------------------------- */

/* A double with the fewest significant digits that read back the same
 * (as a float for a float32), with ".0" when it would look like an
 * integer. */
static void fmt_double(char *buf, size_t cap, double d, bool single)
{
	for (int prec = single ? 6 : 15; prec <= 17; prec++) {
		snprintf(buf, cap, "%.*g", prec, d);
		if (single ? (float)strtod(buf, NULL) == (float)d : strtod(buf, NULL) == d)
			break;
	}
	if (strspn(buf, "-0123456789") == strlen(buf) && strlen(buf) + 3 <= cap)
		strcat(buf, ".0");
}

/* Bytes for a terminal: well-formed UTF-8 as it is, control characters,
 * DEL, backslash and bytes that are not UTF-8 as \xHH. */
static void put_text(FILE *f, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; ) {
		size_t n = cli_utf8_seq(p + i, len - i);

		if (n == 0 || p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\') {
			fprintf(f, "\\x%02x", p[i]);
			i++;
		} else {
			fwrite(p + i, 1, n, f);
			i += n;
		}
	}
}

/* One scalar for people; a container as "{...}" / "[...]" with its size.
 * Advances r past the value. */
static int put_scalar(FILE *f, mpr *r)
{
	enum kind k = kind_of(mpr_peek(r));
	const uint8_t *b;
	const char *s;
	size_t len;
	uint64_t u;
	int64_t i;
	double d;
	bool v, single;
	char num[40];

	switch (k) {
	case K_NIL: r->p++; fputs("null", f); return 0;
	case K_BOOL: mpr_bool(r, &v); fputs(v ? "true" : "false", f); return 0;
	case K_UINT:
		if (mpr_uint(r, &u) != 0)
			return DKV_EPROTO;
		fprintf(f, "%llu", (unsigned long long)u);
		return 0;
	case K_INT:
		if (mpr_int(r, &i) != 0)
			return DKV_EPROTO;
		fprintf(f, "%lld", (long long)i);
		return 0;
	case K_FLOAT:
		if (rd_float(r, &d, &single) != 0)
			return DKV_EPROTO;
		fmt_double(num, sizeof(num), d, single);
		fputs(num, f);
		return 0;
	case K_STR:
		if (mpr_str(r, SIZE_MAX, &s, &len) != 0)
			return DKV_EPROTO;
		if (len == 0)
			fputs("\"\"", f);
		put_text(f, (const uint8_t *)s, len);
		return 0;
	case K_BIN:
		if (mpr_bin(r, SIZE_MAX, &b, &len) != 0)
			return DKV_EPROTO;
		fputs("base64:", f);
		cli_put_base64(f, b, len);
		return 0;
	case K_ARRAY:
	case K_MAP: {
		mpr probe = *r;
		uint64_t n;

		if (rd_header(&probe, k, &n) != 0)
			return DKV_EPROTO;
		fprintf(f, k == K_MAP ? "{%llu keys}" : "[%llu items]", (unsigned long long)n);
		return skip(r);
	}
	default:
		return DKV_EPROTO;
	}
}

/* The text of the value at v (advanced past it) in a new string; NULL on
 * failure.  Caller frees with free(). */
static char *cell_of(mpr *v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	if (f == NULL)
		return NULL;
	rc = put_scalar(f, v);
	if (fclose(f) != 0 || rc != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The text of key's value in map m, or "-" if there is none (or m is not
 * a map). */
static char *cell(const mpr *m, const char *key)
{
	mpr v;

	if (!find(m, key, &v))
		return strdup("-");
	return cell_of(&v);
}

/* Columns on the screen: code points, not bytes. */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

/* Columns a table may have. */
#define TABLE_MAX_COLS 16u

/* A table of nrows rows of ncol (at most TABLE_MAX_COLS) cells
 * (row-major), under hdr; right[c] true iff column c is aligned right;
 * two spaces between columns. */
static void put_table(FILE *f, const char *const *hdr, const bool *right, size_t ncol,
		      char *const *cells, size_t nrows)
{
	size_t w[TABLE_MAX_COLS] = {0};

	assert(ncol <= TABLE_MAX_COLS);

	for (size_t c = 0; c < ncol; c++) {
		w[c] = width(hdr[c]);
		for (size_t r = 0; r < nrows; r++)
			if (width(cells[r * ncol + c]) > w[c])
				w[c] = width(cells[r * ncol + c]);
	}
	for (size_t r = 0; r <= nrows; r++) {
		for (size_t c = 0; c < ncol; c++) {
			const char *s = r == 0 ? hdr[c] : cells[(r - 1) * ncol + c];
			size_t pad = w[c] - width(s);
			bool last = c + 1 == ncol;

			if (c > 0)
				fputs("  ", f);
			if (right[c])
				fprintf(f, "%*s", (int)pad, "");
			fputs(s, f);
			if (!right[c] && !last)
				fprintf(f, "%*s", (int)pad, "");
		}
		putc('\n', f);
	}
}

/* --- JSON ----------------------------------------------------------------- */

static int json_value(FILE *f, mpr *r, unsigned depth)
{
	enum kind k = kind_of(mpr_peek(r));
	const uint8_t *b;
	const char *s;
	size_t len;
	uint64_t n;
	double d;
	bool single;
	char num[40];
	int rc;

	switch (k) {
	case K_FLOAT:
		if (rd_float(r, &d, &single) != 0)
			return DKV_EPROTO;
		if (!isfinite(d)) {
			fputs("null", f);
			return 0;
		}
		fmt_double(num, sizeof(num), d, single);
		fputs(num, f);
		return 0;
	case K_STR:
		if (mpr_str(r, SIZE_MAX, &s, &len) != 0)
			return DKV_EPROTO;
		cli_put_json_string(f, (const uint8_t *)s, len);
		return 0;
	case K_BIN:
		if (mpr_bin(r, SIZE_MAX, &b, &len) != 0)
			return DKV_EPROTO;
		cli_put_json_base64(f, b, len);
		return 0;
	case K_ARRAY:
	case K_MAP:
		if (rd_header(r, k, &n) != 0)
			return DKV_EPROTO;
		if (depth >= ADMIN_RENDER_MAX_DEPTH || n > mpr_left(r) / (k == K_MAP ? 2 : 1))
			return DKV_EPROTO;
		putc(k == K_MAP ? '{' : '[', f);
		for (uint64_t i = 0; i < n; i++) {
			if (i > 0)
				putc(',', f);
			if (k == K_MAP) {
				enum kind kk = kind_of(mpr_peek(r));

				if (kk == K_STR) {
					rc = json_value(f, r, depth + 1);
				} else if (is_scalar(kk) && kk != K_BIN) {
					/* a scalar key: the string of its JSON text */
					putc('"', f);
					rc = json_value(f, r, depth + 1);
					putc('"', f);
				} else {
					rc = DKV_EPROTO;
				}
				if (rc != 0)
					return rc;
				putc(':', f);
			}
			if ((rc = json_value(f, r, depth + 1)) != 0)
				return rc;
		}
		putc(k == K_MAP ? '}' : ']', f);
		return 0;
	case K_BAD:
		return DKV_EPROTO;
	default:
		return put_scalar(f, r);        /* nil, bool, integers: as JSON */
	}
}

/* Render into memory with fn, then write it whole to out. */
typedef int (*render_fn)(FILE *f, const mpr *m, const char *command);

static int render(FILE *out, const void *map, size_t len, const char *command,
		  render_fn fn)
{
	char *buf = NULL;
	size_t blen = 0;
	FILE *f;
	mpr m;
	int rc;

	mpr_init(&m, map, len, DKV_EPROTO);
	if (kind_of(mpr_peek(&m)) != K_MAP)
		return DKV_EPROTO;
	f = open_memstream(&buf, &blen);
	if (f == NULL)
		return -ENOMEM;
	rc = fn(f, &m, command);
	if (fclose(f) != 0 && rc == 0)
		rc = -ENOMEM;
	if (rc == 0 && out != NULL && blen > 0 &&
	    (fwrite(buf, 1, blen, out) != blen || ferror(out)))
		rc = -EIO;
	free(buf);
	return rc;
}

static int json_top(FILE *f, const mpr *m, const char *command)
{
	mpr r = *m;
	int rc = json_value(f, &r, 0);

	if (rc == 0 && mpr_left(&r) != 0)
		rc = DKV_EPROTO;        /* bytes after the map */
	putc('\n', f);
	return rc;
}

int admin_render_json(FILE *out, const void *map, size_t len)
{
	return render(out, map, len, NULL, json_top);
}

/* --- text ----------------------------------------------------------------- */

static void indent(FILE *f, unsigned n)
{
	fprintf(f, "%*s", (int)n, "");
}

static bool listed(const char *k, size_t len, const char *const *keys)
{
	for (; keys != NULL && *keys != NULL; keys++)
		if (strlen(*keys) == len && memcmp(*keys, k, len) == 0)
			return true;
	return false;
}

static int text_block(FILE *f, mpr *r, unsigned ind, bool inline_first,
		      const char *const *omit, size_t *shown);

/* A value after "key:" or "- ": a scalar on the same line, a container on
 * the lines below, indented by ind. */
static int text_after(FILE *f, mpr *r, unsigned ind)
{
	enum kind k = kind_of(mpr_peek(r));
	mpr probe = *r;
	uint64_t n = 0;

	if (k != K_MAP && k != K_ARRAY) {
		putc(' ', f);
		if (put_scalar(f, r) != 0)
			return DKV_EPROTO;
		putc('\n', f);
		return 0;
	}
	if (rd_header(&probe, k, &n) != 0)
		return DKV_EPROTO;
	if (n == 0) {
		fputs(k == K_MAP ? " {}\n" : " []\n", f);
		*r = probe;
		return 0;
	}
	putc('\n', f);
	return text_block(f, r, ind, false, NULL, NULL);
}

/*
 * A map as "key: value" lines or an array as "- value" lines, at indent
 * ind.  inline_first: the first line continues a "- " already written.
 * Map keys in omit are skipped; *shown (if not NULL) counts the lines of
 * keys written.
 */
static int text_block(FILE *f, mpr *r, unsigned ind, bool inline_first,
		      const char *const *omit, size_t *shown)
{
	enum kind k = kind_of(mpr_peek(r));
	uint64_t n;
	int rc;

	if (rd_header(r, k, &n) != 0)
		return DKV_EPROTO;
	for (uint64_t i = 0; i < n; i++) {
		bool first = i == 0 && inline_first;

		if (k == K_ARRAY) {
			enum kind ek = kind_of(mpr_peek(r));
			mpr probe = *r;
			uint64_t en = 0;

			if (!first)
				indent(f, ind);
			fputc('-', f);
			if (ek == K_MAP && mpr_map(&probe, &en) == 0 && en > 0) {
				putc(' ', f);
				rc = text_block(f, r, ind + 2, true, NULL, NULL);
			} else {
				rc = text_after(f, r, ind + 2);
			}
			if (rc != 0)
				return rc;
			continue;
		}
		if (kind_of(mpr_peek(r)) == K_STR) {
			mpr key = *r;
			const char *s;
			size_t len;

			if (mpr_str(&key, SIZE_MAX, &s, &len) != 0)
				return DKV_EPROTO;
			if (listed(s, len, omit)) {
				*r = key;
				if (skip(r) != 0)
					return DKV_EPROTO;
				continue;
			}
		}
		if (!first)
			indent(f, ind);
		if (put_scalar(f, r) != 0)
			return DKV_EPROTO;
		putc(':', f);
		if ((rc = text_after(f, r, ind + 2)) != 0)
			return rc;
		if (shown != NULL)
			(*shown)++;
	}
	return 0;
}

/* The keys of m not in handled, generically, after a blank line if any. */
static int text_rest(FILE *f, const mpr *m, const char *const *handled)
{
	char *buf = NULL;
	size_t blen = 0, shown = 0;
	FILE *g = open_memstream(&buf, &blen);
	mpr r = *m;
	int rc;

	if (g == NULL)
		return -ENOMEM;
	rc = text_block(g, &r, 0, false, handled, &shown);
	if (fclose(g) != 0 && rc == 0)
		rc = -ENOMEM;
	if (rc == 0 && shown > 0) {
		putc('\n', f);
		fwrite(buf, 1, blen, f);
	}
	free(buf);
	return rc;
}

/* Rows of an array of maps: for each element, the cells of keys (a
 * non-map element gives "-" cells).  *cells (row-major, ncol = nkeys, for
 * *nrows rows) is allocated even on failure; free with free_cells(). */
static int rows_of(mpr *arr, const char *const *keys, size_t nkeys, char ***cells,
		   size_t *nrows)
{
	uint64_t n;
	char **c;

	*cells = NULL;
	*nrows = 0;
	if (mpr_array(arr, &n) != 0 || n > mpr_left(arr))
		return DKV_EPROTO;
	c = calloc(n * nkeys + 1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	*cells = c;
	*nrows = (size_t)n;     /* cells not yet filled are NULL: free_cells() copes */
	for (uint64_t i = 0; i < n; i++) {
		mpr el = *arr;

		for (size_t k = 0; k < nkeys; k++) {
			c[i * nkeys + k] = cell(&el, keys[k]);
			if (c[i * nkeys + k] == NULL)
				return -ENOMEM;
		}
		if (skip(arr) != 0)
			return DKV_EPROTO;
	}
	return 0;
}

static void free_cells(char **cells, size_t n)
{
	if (cells == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(cells[i]);
	free(cells);
}

/* "LABEL1 V1, LABEL2 V2": the first line of a result, with the text of
 * the values of keys k1 and k2 ("-" where missing). */
static int put_header(FILE *f, const mpr *m, const char *l1, const char *k1, const char *l2,
		      const char *k2)
{
	char *v1 = cell(m, k1), *v2 = cell(m, k2);
	int rc = v1 != NULL && v2 != NULL ? 0 : -ENOMEM;

	if (rc == 0)
		fprintf(f, "%s %s, %s %s\n", l1, v1, l2, v2);
	free(v1);
	free(v2);
	return rc;
}

/*
 * members: one row per member in the ring's records; removed members are
 * kept in membership (so that an old message cannot bring one back) but
 * are no longer part of the cluster, so they are listed apart, after the
 * table, without a liveness: "removed: ID (ADDR), ...".
 */
/* "epochs: 1 (3 members), 2 (4 members)": the chain of ring epochs in
 * one line, from the members answer's "epochs" (nothing when absent). */
static int text_epochs(FILE *f, const mpr *m)
{
	uint64_t n;
	mpr arr;

	if (!find_kind(m, "epochs", K_ARRAY, &arr))
		return 0;
	if (mpr_array(&arr, &n) != 0 || n > mpr_left(&arr))
		return DKV_EPROTO;
	if (n == 0)
		return 0;
	fputs("\nepochs:", f);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t num = 0, k = 0;
		mpr el = arr, ms;

		(void)get_uint(&el, "number", &num);
		if (find_kind(&el, "members", K_ARRAY, &ms) && mpr_array(&ms, &k) != 0)
			return DKV_EPROTO;
		fprintf(f, "%s %" PRIu64 " (%" PRIu64 " member%s)", i ? "," : "", num, k,
			k == 1 ? "" : "s");
		if (skip(&arr) != 0)
			return DKV_EPROTO;
	}
	putc('\n', f);
	return 0;
}

static int text_members(FILE *f, const mpr *m)
{
	static const char *const keys[] = { "id", "addr", "status", "liveness", "keys",
					    "epoch_ack", "epoch_sync", "epoch_read" };
	static const char *const hdr[] = { "ID", "ADDR", "STATUS", "LIVENESS", "KEYS",
					   "EPOCHS A/S/R" };
	static const bool right[] = { false, false, false, false, true, false };
	static const char *const handled[] = { "members", "epochs", NULL };
	enum { NKEY = 8, NCOL = 6, STATUS = 2, ACK = 5 };
	char **cells = NULL, **shown = NULL;
	size_t nrows = 0, nshown = 0, nremoved = 0, ncol = NCOL - 1;
	mpr arr;
	int rc;

	if (!find_kind(m, "members", K_ARRAY, &arr)) {
		arr = *m;       /* not the schema: all of it, generically */
		return text_block(f, &arr, 0, false, NULL, NULL);
	}
	rc = rows_of(&arr, keys, NKEY, &cells, &nrows);
	if (rc == 0 && (shown = calloc(nrows * NCOL + 1, sizeof(*shown))) == NULL)
		rc = -ENOMEM;
	if (rc != 0)
		goto out;
	/* the progress column only when some member reports one: "ack/sync/read",
	 * built into the row's epoch_ack cell */
	for (size_t r = 0; r < nrows; r++)
		if (strcmp(cells[r * NKEY + ACK], "-") != 0)
			ncol = NCOL;
	for (size_t r = 0; ncol == NCOL && r < nrows; r++) {
		char *e = NULL, **c = cells + r * NKEY;

		if (asprintf(&e, "%s/%s/%s", c[ACK], c[ACK + 1], c[ACK + 2]) < 0) {
			rc = -ENOMEM;
			goto out;
		}
		free(c[ACK]);
		c[ACK] = e;
	}
	/* the table borrows the cells of the rows that are not removed */
	for (size_t r = 0; r < nrows; r++) {
		if (strcmp(cells[r * NKEY + STATUS], "removed") == 0) {
			nremoved++;
			continue;
		}
		memcpy(shown + nshown++ * ncol, cells + r * NKEY, ncol * sizeof(*shown));
	}
	put_table(f, hdr, right, ncol, shown, nshown);
	if (nremoved > 0) {
		fputs("\nremoved:", f);
		for (size_t r = 0, k = 0; r < nrows; r++) {
			if (strcmp(cells[r * NKEY + STATUS], "removed") != 0)
				continue;
			fprintf(f, "%s %s (%s)", k++ > 0 ? "," : "", cells[r * NKEY],
				cells[r * NKEY + 1]);
		}
		putc('\n', f);
	}
	rc = text_epochs(f, m);
out:
	free(shown);
	free_cells(cells, nrows * NKEY);
	return rc != 0 ? rc : text_rest(f, m, handled);
}

/*
 * hints: one row per node this node holds hints for (keys, bytes, state,
 * delivered, the last error), then "pending: N keys".
 */
static int text_hints(FILE *f, const mpr *m)
{
	static const char *const keys[] = { "node", "keys", "bytes", "state", "delivered", "error" };
	static const char *const hdr[] = { "NODE", "KEYS", "BYTES", "STATE", "DELIVERED", "ERROR" };
	static const bool right[] = { false, true, true, false, true, false };
	static const char *const handled[] = { "targets", "pending", "pace", NULL };
	enum { NCOL = 6 };
	char **cells = NULL;
	size_t nrows = 0;
	mpr arr, v;
	int rc = 0;

	if (!find_kind(m, "targets", K_ARRAY, &arr)) {
		arr = *m;
		return text_block(f, &arr, 0, false, NULL, NULL);
	}
	rc = rows_of(&arr, keys, NCOL, &cells, &nrows);
	if (rc == 0 && nrows > 0)
		put_table(f, hdr, right, NCOL, cells, nrows);
	if (rc == 0 && find(m, "pending", &v)) {
		char *c = cell_of(&v);

		fprintf(f, "%spending: %s keys\n", nrows > 0 ? "\n" : "", c ? c : "?");
		free(c);
	}
	if (rc == 0 && nrows > 0 && find_kind(m, "pace", K_MAP, &v)) {
		uint64_t rate, delay, owner, slow;

		if (get_uint(&v, "rate", &rate) && get_uint(&v, "delay_us", &delay) &&
		    get_uint(&v, "owner_delay_us", &owner) && get_uint(&v, "slowdowns", &slow))
			fprintf(f, "pace: %.1f MB/s a delivery (loop delay %" PRIu64 " us, owner's %"
				PRIu64 " us; slowed %" PRIu64 " times)\n", (double)rate / 1e6, delay,
				owner, slow);
	}
	free_cells(cells, nrows * NCOL);
	return rc != 0 ? rc : text_rest(f, m, handled);
}

/* A cell, with a null shown as "-" (c is taken; NULL stays NULL). */
static char *null_dash(char *c)
{
	if (c != NULL && strcmp(c, "null") == 0) {
		free(c);
		return strdup("-");
	}
	return c;
}

/*
 * capacity: one row per member -- keys, bytes on disk, key directory
 * memory, requests a second and p99 over the window, its verdict -- then
 * the cluster's verdict and why.
 */
static int text_capacity(FILE *f, const mpr *m)
{
	static const char *const keys[] = { "addr", "keys", "disk_bytes", "keydir_bytes",
					    "ops_per_s", "p99_us", "window_s", "verdict" };
	static const char *const hdr[] = { "NODE", "KEYS", "DISK", "KEYDIR", "OPS/S", "P99_US",
					   "WINDOW_S", "VERDICT" };
	static const bool right[] = { false, true, true, true, true, true, true, false };
	static const char *const handled[] = { "nodes", "unreachable", "verdict", "reason", NULL };
	enum { NCOL = 8 };
	char **cells = NULL, *verdict, *reason;
	size_t nrows = 0;
	mpr arr;
	int rc = 0;

	if (!find_kind(m, "nodes", K_ARRAY, &arr)) {
		arr = *m;
		return text_block(f, &arr, 0, false, NULL, NULL);
	}
	rc = rows_of(&arr, keys, NCOL, &cells, &nrows);
	for (size_t r = 0; rc == 0 && r < nrows; r++)
		for (int c = 4; c <= 6; c += 2) {
			char *x = cells[r * NCOL + c];

			if (x != NULL && strchr(x, '.') != NULL)
				strchr(x, '.')[c == 6 ? 2 : 0] = '\0';   /* ops whole, window .1 */
		}
	if (rc == 0 && nrows > 0)
		put_table(f, hdr, right, NCOL, cells, nrows);
	free_cells(cells, nrows * NCOL);
	verdict = cell(m, "verdict");
	reason = cell(m, "reason");
	if (rc == 0 && verdict != NULL && reason != NULL)
		fprintf(f, "%scluster: %s (%s)\n", nrows > 0 ? "\n" : "", verdict, reason);
	free(verdict);
	free(reason);
	return rc != 0 ? rc : text_rest(f, m, handled);
}

/*
 * transfers: one row per partition being received -- from where, keys and
 * bytes merged of the total, rate, time left, which of its sources --
 * then what waits, and whether transfers are paused.
 */
static int text_transfers(FILE *f, const mpr *m)
{
	static const char *const keys[] = { "partition", "from", "keys", "bytes", "total_bytes",
					    "rate", "eta_s", "source", "sources", "error" };
	static const char *const hdr[] = { "PART", "FROM", "KEYS", "BYTES", "OF", "B/S", "ETA_S",
					   "SRC", "OF", "ERROR" };
	static const bool right[] = { true, false, true, true, true, true, true, true, true,
				      false };
	static const char *const handled[] = { "active", "pending", "paused", "received",
					       "served_bytes", "merged_bytes", "dropped", "pace",
					       NULL };
	enum { NCOL = 10 };
	char **cells = NULL;
	size_t nrows = 0;
	uint64_t pending = 0, received = 0, served = 0, merged = 0, dropped = 0;
	bool paused = false;
	mpr arr, v;
	int rc = 0;

	if (!find_kind(m, "active", K_ARRAY, &arr)) {
		arr = *m;
		return text_block(f, &arr, 0, false, NULL, NULL);
	}
	rc = rows_of(&arr, keys, NCOL, &cells, &nrows);
	for (size_t r = 0; rc == 0 && r < nrows; r++) {
		char *c = cells[r * NCOL + 5];   /* rate: whole bytes a second */

		if (c != NULL && strchr(c, '.') != NULL)
			*strchr(c, '.') = '\0';
		if ((cells[r * NCOL + 6] = null_dash(cells[r * NCOL + 6])) != NULL &&
		    strchr(cells[r * NCOL + 6], '.') != NULL)
			*strchr(cells[r * NCOL + 6], '.') = '\0';
		if (cells[r * NCOL + 9] != NULL && strcmp(cells[r * NCOL + 9], "\"\"") == 0) {
			free(cells[r * NCOL + 9]);
			cells[r * NCOL + 9] = strdup("-");
		}
	}
	if (rc == 0 && nrows > 0)
		put_table(f, hdr, right, NCOL, cells, nrows);
	(void)get_uint(m, "pending", &pending);
	(void)get_uint(m, "received", &received);
	(void)get_uint(m, "served_bytes", &served);
	(void)get_uint(m, "merged_bytes", &merged);
	(void)get_uint(m, "dropped", &dropped);
	if (find(m, "paused", &v))
		(void)mpr_bool(&v, &paused);
	if (rc == 0)
		fprintf(f, "%s%zu active, %" PRIu64 " waiting%s\nsince start: %" PRIu64
			" partitions received (%" PRIu64 " bytes merged), %" PRIu64 " dropped, %"
			PRIu64 " bytes sent to others\n", nrows > 0 ? "\n" : "", nrows, pending,
			paused ? " (PAUSED: dynkv-admin transfers resume)" : "", received, merged,
			dropped, served);
	if (rc == 0 && find_kind(m, "pace", K_MAP, &v)) {
		uint64_t rate, delay, src, slow, windows;

		if (get_uint(&v, "rate", &rate) && get_uint(&v, "delay_us", &delay) &&
		    get_uint(&v, "source_delay_us", &src) && get_uint(&v, "slowdowns", &slow) &&
		    get_uint(&v, "windows", &windows))
			fprintf(f, "pace: %.1f MB/s received now (loop delay %" PRIu64
				" us, the last source's %" PRIu64 " us; slowed in %" PRIu64 " of %"
				PRIu64 " windows)\n", (double)rate / 1e6, delay, src, slow, windows);
	}
	free_cells(cells, nrows * NCOL);
	return rc != 0 ? rc : text_rest(f, m, handled);
}

/*
 * aae: one row per partition held -- its tree's state, age and keys, and
 * its last exchange: how long ago, with whom, the keys it repaired and
 * how it ended ("-" where there was none) -- then the totals in two
 * lines.  (Tree roots, compared counts and per-exchange bytes are in the
 * JSON.)
 */
static int text_aae(FILE *f, const mpr *m)
{
	static const char *const hdr[] = { "PART", "STATE", "AGE_S", "KEYS", "LAST_S", "PEER",
					   "REPAIRED", "RESULT" };
	static const bool right[] = { true, false, true, true, true, false, true, false };
	static const char *const pkeys[] = { "partition", "state", "age_s", "keys" };
	static const char *const lkeys[] = { "ago_s", "peer", "repaired", "result" };
	static const char *const tkeys[] = { "exchanges", "equal", "failed", "repaired", "bytes",
					     "trees_ready", "builds", "build_ms" };
	static const char *const handled[] = { "partitions", "totals", NULL };
	enum { NCOL = 8, NTOT = 8 };
	char **cells = NULL, *t[NTOT] = { NULL };
	size_t nrows = 0;
	mpr arr, tot;
	uint64_t n;
	int rc = 0;

	if (!find_kind(m, "partitions", K_ARRAY, &arr) || !find_kind(m, "totals", K_MAP, &tot)) {
		arr = *m;       /* not the schema: all of it, generically */
		return text_block(f, &arr, 0, false, NULL, NULL);
	}
	if (mpr_array(&arr, &n) != 0 || n > mpr_left(&arr))
		return DKV_EPROTO;
	if ((cells = calloc(n * NCOL + 1, sizeof(*cells))) == NULL)
		return -ENOMEM;
	nrows = (size_t)n;
	for (size_t i = 0; rc == 0 && i < nrows; i++) {
		mpr el = arr, last;
		bool has_last = find_kind(&el, "last", K_MAP, &last);

		for (size_t k = 0; k < 4; k++) {
			cells[i * NCOL + k] = null_dash(cell(&el, pkeys[k]));
			cells[i * NCOL + 4 + k] = has_last ? null_dash(cell(&last, lkeys[k]))
							   : strdup("-");
		}
		for (size_t k = 0; k < NCOL; k++)
			if (cells[i * NCOL + k] == NULL)
				rc = -ENOMEM;
		if (rc == 0 && skip(&arr) != 0)
			rc = DKV_EPROTO;
	}
	for (size_t k = 0; rc == 0 && k < NTOT; k++)
		if ((t[k] = cell(&tot, tkeys[k])) == NULL)
			rc = -ENOMEM;
	if (rc == 0) {
		if (nrows > 0) {
			put_table(f, hdr, right, NCOL, cells, nrows);
			putc('\n', f);
		}
		fprintf(f, "exchanges: %s (%s equal, %s failed), %s keys repaired, %s bytes sent\n",
			t[0], t[1], t[2], t[3], t[4]);
		fprintf(f, "trees: %s of %zu ready, %s builds in %s ms\n", t[5], nrows, t[6], t[7]);
	}
	for (size_t k = 0; k < NTOT; k++)
		free(t[k]);
	free_cells(cells, nrows * NCOL);
	return rc != 0 ? rc : text_rest(f, m, handled);
}

/*
 * preflist: "partition P, n N", then one row per entry of the preference
 * list in order: its position (from 1), the member, whether it is one of
 * the n primaries or a fallback, and its liveness.
 */
static int text_preflist(FILE *f, const mpr *m)
{
	static const char *const keys[] = { "id", "addr", "primary", "liveness" };
	static const char *const hdr[] = { "POS", "ID", "ADDR", "ROLE", "LIVENESS" };
	static const bool right[] = { true, false, false, false, false };
	static const char *const handled[] = { "partition", "n", "preflist", NULL };
	enum { NKEY = 4, NCOL = 5, PRIMARY = 2 };
	char **cells = NULL, **rows = NULL;
	size_t nrows = 0;
	mpr arr;
	int rc;

	if ((rc = put_header(f, m, "partition", "partition", "n", "n")) != 0)
		return rc;
	if (!find_kind(m, "preflist", K_ARRAY, &arr))
		return text_rest(f, m, handled);
	rc = rows_of(&arr, keys, NKEY, &cells, &nrows);
	if (rc == 0 && (rows = calloc(nrows * NCOL + 1, sizeof(*rows))) == NULL)
		rc = -ENOMEM;
	for (size_t r = 0; rc == 0 && r < nrows; r++) {
		char **row = rows + r * NCOL, **c = cells + r * NKEY;
		char pos[24];

		snprintf(pos, sizeof(pos), "%zu", r + 1);
		row[0] = strdup(pos);
		for (size_t k = 0; k < NKEY; k++) {
			row[k + 1] = c[k];      /* moved */
			c[k] = NULL;
		}
		if (strcmp(row[1 + PRIMARY], "true") == 0 || strcmp(row[1 + PRIMARY], "false") == 0) {
			bool primary = row[1 + PRIMARY][0] == 't';

			free(row[1 + PRIMARY]);
			row[1 + PRIMARY] = strdup(primary ? "primary" : "fallback");
		}
		if (row[0] == NULL || row[1 + PRIMARY] == NULL)
			rc = -ENOMEM;
	}
	if (rc == 0) {
		putc('\n', f);
		put_table(f, hdr, right, NCOL, rows, nrows);
	}
	free_cells(rows, rows != NULL ? nrows * NCOL : 0);
	free_cells(cells, nrows * NKEY);
	return rc != 0 ? rc : text_rest(f, m, handled);
}

/* The "ownership" array of m, if any, as a table after a blank line:
 * ID REPLICAS FIRST SHARE (the share as a percentage). */
static int text_ownership(FILE *f, const mpr *m)
{
	static const char *const okeys[] = { "id", "replicas", "first" };
	static const char *const hdr[] = { "ID", "REPLICAS", "FIRST", "SHARE" };
	static const bool right[] = { false, true, true, true };
	uint64_t n;
	char **cells;
	mpr el;
	int rc = 0;

	if (!find_kind(m, "ownership", K_ARRAY, &el))
		return 0;
	if (mpr_array(&el, &n) != 0 || n > mpr_left(&el))
		return DKV_EPROTO;
	cells = calloc(n * 4 + 1, sizeof(*cells));
	if (cells == NULL)
		return -ENOMEM;
	for (uint64_t i = 0; i < n && rc == 0; i++) {
		double share;

		for (size_t k = 0; k < 3 && rc == 0; k++) {
			cells[i * 4 + k] = cell(&el, okeys[k]);
			if (cells[i * 4 + k] == NULL)
				rc = -ENOMEM;
		}
		if (rc == 0 && get_number(&el, "share", &share) && isfinite(share)) {
			char pct[64];

			snprintf(pct, sizeof(pct), "%.1f%%", share * 100.0);
			cells[i * 4 + 3] = strdup(pct);
		} else if (rc == 0) {
			cells[i * 4 + 3] = cell(&el, "share");
		}
		if (rc == 0 && cells[i * 4 + 3] == NULL)
			rc = -ENOMEM;
		if (rc == 0 && skip(&el) != 0)
			rc = DKV_EPROTO;
	}
	if (rc == 0) {
		putc('\n', f);
		put_table(f, hdr, right, 4, cells, (size_t)n);
	}
	free_cells(cells, (size_t)n * 4);
	return rc;
}

/*
 * plan: "join N: 3 members -> 4; 384 of 1536 replicas move, about K keys
 * (B bytes)", a warning when some have no source, one row per move, then
 * the ownership after.
 */
static int text_plan(FILE *f, const mpr *m)
{
	static const char *const keys[] = { "partition", "from", "to", "keys", "bytes" };
	static const char *const hdr[] = { "PARTITION", "FROM", "TO", "KEYS", "BYTES" };
	static const bool right[] = { true, false, false, true, true };
	static const char *const handled[] = { "change", "node", "members_before", "members_after",
					       "replicas", "keys", "bytes", "lost", "moves",
					       "ownership", NULL };
	uint64_t before = 0, after = 0, reps = 0, keys_n = 0, bytes = 0, lost = 0;
	char *change = NULL, *node = NULL, **cells = NULL;
	size_t nrows = 0;
	mpr arr;
	int rc = 0;

	change = cell(m, "change");
	node = cell(m, "node");
	if (change == NULL || node == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	(void)get_uint(m, "members_before", &before);
	(void)get_uint(m, "members_after", &after);
	(void)get_uint(m, "replicas", &reps);
	(void)get_uint(m, "keys", &keys_n);
	(void)get_uint(m, "bytes", &bytes);
	(void)get_uint(m, "lost", &lost);
	if (find_kind(m, "moves", K_ARRAY, &arr) && (rc = rows_of(&arr, keys, 5, &cells, &nrows)) != 0)
		goto out;
	for (size_t r = 0; r < nrows; r++)   /* from nil: no member has the data */
		if (strcmp(cells[r * 5 + 1], "null") == 0) {
			free(cells[r * 5 + 1]);
			if ((cells[r * 5 + 1] = strdup("-")) == NULL) {
				rc = -ENOMEM;
				goto out;
			}
		}
	fprintf(f, "%s %s: %" PRIu64 " members -> %" PRIu64 "; %" PRIu64 " of %" PRIu64
		" replicas move, about %" PRIu64 " key%s (%" PRIu64 " bytes)\n", change, node,
		before, after, (uint64_t)nrows, reps, keys_n, keys_n == 1 ? "" : "s", bytes);
	if (lost > 0)
		fprintf(f, "warning: %" PRIu64 " partition replicas would have no other replica "
			"to come from: their keys would be lost\n", lost);
	if (nrows > 0) {
		putc('\n', f);
		put_table(f, hdr, right, 5, cells, nrows);
	}
	if (find_kind(m, "ownership", K_ARRAY, &arr))
		fputs("\nafter the change:\n", f);
	rc = text_ownership(f, m);
out:
	free(change);
	free(node);
	free_cells(cells, nrows * 5);
	return rc != 0 ? rc : text_rest(f, m, handled);
}

static int text_ring(FILE *f, const mpr *m)
{
	static const char *const handled[] = { "ring_size", "n_val", "ownership",
					       "partitions", "epochs", "settled", NULL };
	mpr arr;
	uint64_t ne = 1;
	int rc;

	if ((rc = put_header(f, m, "ring size", "ring_size", "n_val", "n_val")) != 0)
		return rc;
	if (get_uint(m, "epochs", &ne) && ne > 1)
		fprintf(f, "a change is under way: %" PRIu64 " ring epochs active, the newest shown "
			"(dynkv-admin members: each member's progress; transfers: what moves)\n",
			ne);
	if ((rc = text_ownership(f, m)) != 0)
		goto out;
	if (find_kind(m, "partitions", K_ARRAY, &arr)) {
		uint64_t n;

		if (mpr_array(&arr, &n) != 0) {
			rc = DKV_EPROTO;
			goto out;
		}
		fputs("\nPARTITION  PREFERENCE LIST\n", f);
		for (uint64_t i = 0; i < n; i++) {
			mpr el = arr, pl;
			char *idx = cell(&el, "index");

			if (idx == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			fprintf(f, "%9s ", idx);
			free(idx);
			if (kind_of(mpr_peek(&el)) == K_MAP &&
			    find_kind(&el, "preflist", K_ARRAY, &pl)) {
				uint64_t np;

				if (mpr_array(&pl, &np) != 0) {
					rc = DKV_EPROTO;
					goto out;
				}
				for (uint64_t j = 0; j < np; j++) {
					putc(' ', f);
					if (put_scalar(f, &pl) != 0) {
						rc = DKV_EPROTO;
						goto out;
					}
				}
			} else {
				fputs(" -", f);
			}
			putc('\n', f);
			if (skip(&arr) != 0) {
				rc = DKV_EPROTO;
				goto out;
			}
		}
	}
	rc = text_rest(f, m, handled);
out:
	return rc;
}

/* "1.5 MiB" */
static void human_bytes(char *buf, size_t cap, uint64_t b)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)b;
	size_t u = 0;

	if (b < 1024) {
		snprintf(buf, cap, "%llu B", (unsigned long long)b);
		return;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, cap, "%.1f %s (%llu bytes)", v, unit[u], (unsigned long long)b);
}

/* "3d 4h 5m 6s" */
static void human_secs(char *buf, size_t cap, uint64_t s)
{
	unsigned long long d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, x = s % 60;

	if (d > 0)
		snprintf(buf, cap, "%llud %lluh %llum %llus", d, h, m, x);
	else if (h > 0)
		snprintf(buf, cap, "%lluh %llum %llus", h, m, x);
	else if (m > 0)
		snprintf(buf, cap, "%llum %llus", m, x);
	else
		snprintf(buf, cap, "%llus", x);
}

static int text_status(FILE *f, const mpr *m)
{
	/* The schema's keys, in the order shown. */
	static const char *const order[] = {
		"id", "addr", "uptime_s", "keys", "bytes", "requests", "requests_per_sec",
		"latency_us", "connections", "partitions_held", "partitions_open",
		"ring_size", "n_val", "members", "gets", "puts", "deletes", "errors",
		"read_repairs", NULL
	};
	static const char *const lat[] = { "p50", "p99", "p999", "max" };

	for (size_t i = 0; order[i] != NULL; i++) {
		const char *k = order[i];
		char buf[128];
		uint64_t u;
		double d;
		mpr v;

		if (!find(m, k, &v))
			continue;
		if (strcmp(k, "uptime_s") == 0 && get_uint(m, k, &u)) {
			human_secs(buf, sizeof(buf), u);
			fprintf(f, "uptime: %s\n", buf);
		} else if (strcmp(k, "bytes") == 0 && get_uint(m, k, &u)) {
			human_bytes(buf, sizeof(buf), u);
			fprintf(f, "bytes: %s\n", buf);
		} else if (strcmp(k, "requests_per_sec") == 0 && get_number(m, k, &d) &&
			   isfinite(d)) {
			fprintf(f, "requests_per_sec: %.1f\n", d);
		} else if (strcmp(k, "latency_us") == 0 && kind_of(mpr_peek(&v)) == K_MAP) {
			fputs("latency:", f);
			for (size_t j = 0; j < 4; j++) {
				char *c = cell(&v, lat[j]);

				if (c == NULL)
					return -ENOMEM;
				fprintf(f, "%s %s %s%s", j > 0 ? "," : "", lat[j], c,
					strcmp(c, "-") != 0 ? " us" : "");
				free(c);
			}
			putc('\n', f);
		} else {
			char *c = cell_of(&v);

			if (c == NULL)
				return -ENOMEM;
			fprintf(f, "%s: %s\n", k, c);
			free(c);
		}
	}
	return text_rest(f, m, order);
}

static int text_message(FILE *f, const mpr *m)
{
	static const char *const handled[] = { "ok", "message", NULL };
	mpr v;

	if (find(m, "message", &v)) {
		char *c = cell_of(&v);

		if (c == NULL)
			return -ENOMEM;
		fprintf(f, "%s\n", c);
		free(c);
	} else {
		mpr ok;
		bool b;

		if (find(m, "ok", &ok) && mpr_bool(&ok, &b) == 0)
			fputs(b ? "ok\n" : "failed\n", f);
	}
	return text_rest(f, m, handled);
}

/* metrics: the text itself, as Prometheus reads it (no other field). */
static int text_metrics(FILE *f, const mpr *m)
{
	const char *t;
	size_t tl;
	mpr v;

	if (!find(m, "text", &v) || mpr_str(&v, SIZE_MAX, &t, &tl) != 0) {
		mpr r = *m;

		return text_block(f, &r, 0, false, NULL, NULL);
	}
	fwrite(t, 1, tl, f);
	return 0;
}

static int text_top(FILE *f, const mpr *m, const char *command)
{
	mpr r = *m;
	int rc;

	/* Validate first (the JSON writer refuses what is not well-formed);
	 * the lookups below rely on it. */
	if ((rc = admin_render_json(NULL, m->p, mpr_left(m))) != 0)
		return rc;
	if (command == NULL)
		command = "";
	if (strcmp(command, "members") == 0)
		return text_members(f, m);
	if (strcmp(command, "ring") == 0)
		return text_ring(f, m);
	if (strcmp(command, "status") == 0)
		return text_status(f, m);
	if (strcmp(command, "preflist") == 0)
		return text_preflist(f, m);
	if (strcmp(command, "plan") == 0)
		return text_plan(f, m);
	if (strcmp(command, "hints") == 0)
		return text_hints(f, m);
	if (strcmp(command, "aae") == 0)
		return text_aae(f, m);
	if (strcmp(command, "capacity") == 0)
		return text_capacity(f, m);
	if (strcmp(command, "metrics") == 0)
		return text_metrics(f, m);
	if (strcmp(command, "transfers") == 0) {
		mpr v;

		return find(m, "message", &v) ? text_message(f, m) : text_transfers(f, m);
	}
	if (strcmp(command, "join") == 0 || strcmp(command, "leave") == 0 ||
	    strcmp(command, "remove") == 0)
		return text_message(f, m);
	r = *m;
	return text_block(f, &r, 0, false, NULL, NULL);
}

int admin_render_text(FILE *out, const char *command, const void *map, size_t len)
{
	return render(out, map, len, command, text_top);
}

bool admin_render_ok(const void *map, size_t len, char *msg, size_t msglen)
{
	mpr m, v;
	bool ok = true, b;

	if (msglen > 0)
		msg[0] = '\0';
	if (admin_render_json(NULL, map, len) != 0)
		return true;    /* not a map: no "ok" in it */
	mpr_init(&m, map, len, DKV_EPROTO);
	if (find(&m, "ok", &v) && mpr_bool(&v, &b) == 0)
		ok = b;
	if (msglen > 0 && find_kind(&m, "message", K_STR, &v)) {
		char *c = cell_of(&v);

		if (c != NULL)
			snprintf(msg, msglen, "%s", c);
		free(c);
	}
	return ok;
}

/* --- capacity over the members ---------------------------------------- */

#define PKS(pk, s) msgpack_pack_str_with_body((pk), (s), strlen(s))

void admin_render_free_addrs(char **addrs, size_t n)
{
	for (size_t i = 0; addrs != NULL && i < n; i++)
		free(addrs[i]);
	free(addrs);
}

int admin_render_member_addrs(const void *map, size_t len, char ***addrs, size_t *n)
{
	mpr m, arr;
	uint64_t k;
	char **out;

	*addrs = NULL;
	*n = 0;
	mpr_init(&m, map, len, DKV_EPROTO);
	if (!find_kind(&m, "members", K_ARRAY, &arr) || mpr_array(&arr, &k) != 0 ||
	    k > 65536)
		return DKV_EPROTO;
	if ((out = calloc(k ? k : 1, sizeof(*out))) == NULL)
		return -ENOMEM;
	for (uint64_t i = 0; i < k; i++) {
		mpr el = arr;
		char *st = cell(&el, "status"), *addr = cell(&el, "addr");

		if (skip(&arr) != 0 || st == NULL || addr == NULL) {
			free(st);
			free(addr);
			admin_render_free_addrs(out, *n);
			return st == NULL || addr == NULL ? -ENOMEM : DKV_EPROTO;
		}
		if (strcmp(st, "removed") != 0 && strcmp(addr, "-") != 0)
			out[(*n)++] = addr;
		else
			free(addr);
		free(st);
	}
	*addrs = out;
	return 0;
}

int admin_render_capacity(const void *const *maps, const size_t *lens, char *const *addrs,
			  size_t n, void **out, size_t *outlen)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t answered = 0, grow = 0, shrink = 0, unreachable = 0;
	uint64_t n_val = 0;
	char reason[1024] = "";

	for (size_t i = 0; i < n; i++) {
		mpr m;
		char *v;

		if (maps[i] == NULL) {
			unreachable++;
			continue;
		}
		mpr_init(&m, maps[i], lens[i], DKV_EPROTO);
		if ((v = cell(&m, "verdict")) == NULL)
			return -ENOMEM;
		(void)get_uint(&m, "n_val", &n_val);
		answered++;
		if (strcmp(v, "grow") == 0 && grow++ == 0) {
			char *why = cell(&m, "reason");

			snprintf(reason, sizeof(reason), "%s: %s", addrs[i], why ? why : "?");
			free(why);
		}
		shrink += strcmp(v, "shrink") == 0;
		free(v);
	}
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	/* the cluster's verdict first: a reader that takes the first
	 * "verdict" (a shell script) gets it, not a member's */
	PKS(&pk, "verdict");
	if (grow > 0) {
		PKS(&pk, "grow");
	} else if (unreachable == 0 && answered > 0 && shrink == answered && answered > n_val) {
		PKS(&pk, "shrink");
		snprintf(reason, sizeof(reason), "every one of the %zu members is under "
			 "capacity_shrink_ops, and one fewer still leaves n_val = %" PRIu64,
			 answered, n_val);
	} else {
		PKS(&pk, "hold");
		if (unreachable > 0)
			snprintf(reason, sizeof(reason), "%zu members did not answer", unreachable);
		else if (shrink == answered && answered > 0)
			snprintf(reason, sizeof(reason), "every member could take more, but %zu "
				 "members is n_val = %" PRIu64 " or fewer", answered, n_val);
		else
			snprintf(reason, sizeof(reason), "%zu of %zu members within their limits",
				 answered - shrink, answered);
	}
	PKS(&pk, "reason");
	PKS(&pk, reason);
	PKS(&pk, "nodes");
	msgpack_pack_array(&pk, (uint32_t)answered);
	for (size_t i = 0; i < n; i++)
		if (maps[i] != NULL)
			msgpack_sbuffer_write(&sb, maps[i], lens[i]);
	PKS(&pk, "unreachable");
	msgpack_pack_array(&pk, (uint32_t)unreachable);
	for (size_t i = 0; i < n; i++)
		if (maps[i] == NULL)
			PKS(&pk, addrs[i]);
	*out = sb.data;
	*outlen = sb.size;
	return 0;
}
