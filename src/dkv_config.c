/* dkv_config.c -- dynkv.conf(5) and dynkvd's options; see dkv_config.h. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dkv_config.h"
#include "error.h"

_Static_assert(DKV_LOG_ERROR == 0 && DKV_LOG_DEBUG == 3, "log levels as in the config");

typedef enum ctype {
#define CT_ENUM_(type, docname, ctype) CT_##type,
	DKV_CONFIG_TYPES(CT_ENUM_)
#undef CT_ENUM_
} ctype;

static const char *const ctype_names[] = {
#define CT_NAME_(type, docname, ctype) [CT_##type] = docname,
	DKV_CONFIG_TYPES(CT_NAME_)
#undef CT_NAME_
};

/* One row of DKV_CONFIG_KEYS with what the parser needs. */
typedef struct key_info {
	const char *name;          /* file key */
	ctype type;                /* kind of value */
	const char *def;           /* default, as text */
	uint64_t min;              /* lower bound (length for STR) */
	uint64_t max;              /* upper bound (length for STR) */
	size_t off;                /* offset of the field in dkv_config */
	const char *desc;          /* one-line description */
} key_info;

static const key_info keys[DKV_CONFIG_NKEYS] = {
#define ROW_(name, type, def, mn, mx, desc) \
	[DKV_CONFIG_KEY_##name] = { #name, CT_##type, def, mn, mx, \
				    offsetof(dkv_config, name), desc },
	DKV_CONFIG_KEYS(ROW_)
#undef ROW_
};

static const char *const sync_names[] = { "none", "interval", "always" };
static const char *const level_names[] = { "error", "warning", "info", "debug" };

/* ---- the table ---------------------------------------------------------- */

static int key_index(const char *name, size_t len)
{
	for (int i = 0; i < DKV_CONFIG_NKEYS; i++)
		if (strlen(keys[i].name) == len && memcmp(keys[i].name, name, len) == 0)
			return i;
	return -1;
}

/* The index of the key whose option is --name (dashes for underscores). */
static int option_index(const char *name, size_t len)
{
	for (int i = 0; i < DKV_CONFIG_NKEYS; i++) {
		const char *k = keys[i].name;
		if (strlen(k) != len)
			continue;
		size_t j;
		for (j = 0; j < len; j++)
			if (name[j] != (k[j] == '_' ? '-' : k[j]))
				break;
		if (j == len)
			return i;
	}
	return -1;
}

bool dkv_config_key_at(size_t i, dkv_config_key *out)
{
	if (i >= DKV_CONFIG_NKEYS)
		return false;
	const key_info *k = &keys[i];
	out->name = k->name;
	size_t n = 0;
	out->option[n++] = '-';
	out->option[n++] = '-';
	for (const char *p = k->name; *p && n + 1 < sizeof(out->option); p++)
		out->option[n++] = *p == '_' ? '-' : *p;
	out->option[n] = '\0';
	out->type = ctype_names[k->type];
	out->default_text = k->def;
	out->description = k->desc;
	return true;
}

bool dkv_config_key_find(const char *name, dkv_config_key *out)
{
	int i = key_index(name, strlen(name));
	return i >= 0 && dkv_config_key_at((size_t)i, out);
}

/* ---- values --------------------------------------------------------------- */

/* Write at most 48 bytes of s into buf for a message: control and non-ASCII
 * bytes as \xNN, "..." when cut. */
static const char *shown(char *buf, size_t buflen, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0, shown_max = 48;
	size_t i;
	for (i = 0; s[i] && i < shown_max && n + 5 < buflen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f) {
			buf[n++] = '\\';
			buf[n++] = 'x';
			buf[n++] = hex[c >> 4];
			buf[n++] = hex[c & 15];
		} else {
			buf[n++] = (char)c;
		}
	}
	if (s[i] && n + 4 <= buflen) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

/* Decimal digits at *p: at least one, no sign, no overflow of 64 bits. */
static bool parse_digits(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (x > (UINT64_MAX - d) / 10)
			return false;
		x = x * 10 + d;
	}
	*p = s;
	*v = x;
	return true;
}

static bool parse_number(const char *s, uint64_t *v)
{
	return parse_digits(&s, v) && *s == '\0';
}

static bool parse_size(const char *s, uint64_t *v)
{
	uint64_t x, mult = 1;
	if (!parse_digits(&s, &x))
		return false;
	switch (*s) {
	case '\0': break;
	case 'k': case 'K': mult = 1ull << 10; s++; break;
	case 'm': case 'M': mult = 1ull << 20; s++; break;
	case 'g': case 'G': mult = 1ull << 30; s++; break;
	default: return false;
	}
	if (mult > 1 && strcmp(s, "iB") == 0)
		s += 2;
	if (*s != '\0')
		return false;
	if (x > UINT64_MAX / mult)
		return false;
	*v = x * mult;
	return true;
}

/* A duration in ms; a plain number is plain_mult ms (1: milliseconds,
 * 1000: seconds). */
static bool parse_duration_as(const char *s, uint64_t *v, uint64_t plain_mult)
{
	uint64_t x, mult;
	if (!parse_digits(&s, &x))
		return false;
	if (*s == '\0')
		mult = plain_mult;
	else if (strcmp(s, "ms") == 0)
		mult = 1;
	else if (strcmp(s, "s") == 0)
		mult = 1000;
	else if (strcmp(s, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(s, "h") == 0)
		mult = 3600 * 1000;
	else
		return false;
	if (x > UINT64_MAX / mult)
		return false;
	*v = x * mult;
	return true;
}

static bool parse_duration(const char *s, uint64_t *v)
{
	return parse_duration_as(s, v, 1);
}

/* Microseconds: a bare number, or with us, ms or s. */
static bool parse_micros(const char *s, uint64_t *v)
{
	uint64_t x, mult;
	if (!parse_digits(&s, &x))
		return false;
	if (*s == '\0' || strcmp(s, "us") == 0)
		mult = 1;
	else if (strcmp(s, "ms") == 0)
		mult = 1000;
	else if (strcmp(s, "s") == 0)
		mult = 1000000;
	else
		return false;
	if (x > UINT64_MAX / mult)
		return false;
	*v = x * mult;
	return true;
}

static bool is_host_byte(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static bool is_v6_byte(char c)
{
	return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
	       (c >= '0' && c <= '9') || c == ':' || c == '.' || c == '%' ||
	       is_host_byte(c);
}

int dkv_config_hostport(const char *s, size_t len, char *host, size_t hostlen,
			uint16_t *port)
{
	size_t colon, hstart, hend;

	if (len == 0)
		return DKV_EINVAL;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close)
			return DKV_EINVAL;
		hstart = 1;
		hend = (size_t)(close - s);
		colon = hend + 1;
		if (colon >= len || s[colon] != ':')
			return DKV_EINVAL;
		for (size_t i = hstart; i < hend; i++)
			if (!is_v6_byte(s[i]))
				return DKV_EINVAL;
	} else {
		const char *c = NULL;
		for (size_t i = 0; i < len; i++)
			if (s[i] == ':')
				c = s + i;   /* the last one */
		if (!c)
			return DKV_EINVAL;
		hstart = 0;
		hend = colon = (size_t)(c - s);
		for (size_t i = hstart; i < hend; i++)
			if (!is_host_byte(s[i]))
				return DKV_EINVAL;
	}
	if (hend == hstart || hend - hstart > 253)
		return DKV_EINVAL;
	size_t plen = len - colon - 1;
	if (plen == 0 || plen > 5)
		return DKV_EINVAL;
	uint32_t p = 0;
	for (size_t i = colon + 1; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return DKV_EINVAL;
		p = p * 10 + (uint32_t)(s[i] - '0');
	}
	if (p < 1 || p > 65535)
		return DKV_EINVAL;
	if (host) {
		if (hend - hstart + 1 > hostlen)
			return DKV_EINVAL;
		memcpy(host, s + hstart, hend - hstart);
		host[hend - hstart] = '\0';
	}
	if (port)
		*port = (uint16_t)p;
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Walk the elements of a seed list: on return [*b, *e) is the next element,
 * trimmed; *pos moves past its comma.  False at the end. */
static bool list_next(const char *s, size_t *pos, size_t *b, size_t *e)
{
	size_t i = *pos, n = strlen(s);
	if (i > n)
		return false;
	while (i < n && is_blank(s[i]))
		i++;
	*b = i;
	while (i < n && s[i] != ',')
		i++;
	size_t end = i;
	while (end > *b && is_blank(s[end - 1]))
		end--;
	*e = end;
	*pos = i + 1;
	return true;
}

static bool list_is_empty(const char *s)
{
	for (; *s; s++)
		if (!is_blank(*s))
			return false;
	return true;
}

size_t dkv_config_seed_count(const dkv_config *cfg)
{
	if (!cfg->seeds || list_is_empty(cfg->seeds))
		return 0;
	size_t n = 1;
	for (const char *p = cfg->seeds; *p; p++)
		n += *p == ',';
	return n;
}

int dkv_config_seed(const dkv_config *cfg, size_t i, char *host, size_t hostlen,
		    uint16_t *port)
{
	size_t pos = 0, b, e;
	if (i >= dkv_config_seed_count(cfg))
		return DKV_ENOTFOUND;
	for (size_t k = 0; list_next(cfg->seeds, &pos, &b, &e); k++)
		if (k == i)
			return dkv_config_hostport(cfg->seeds + b, e - b, host, hostlen, port);
	return DKV_ENOTFOUND;
}

static int enum_index(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

/* Format a size with the largest exact suffix: 1048576 -> "1M". */
static void format_size(char *buf, size_t len, uint64_t v)
{
	if (v != 0 && v % (1ull << 30) == 0)
		snprintf(buf, len, "%" PRIu64 "G", v >> 30);
	else if (v != 0 && v % (1ull << 20) == 0)
		snprintf(buf, len, "%" PRIu64 "M", v >> 20);
	else if (v != 0 && v % (1ull << 10) == 0)
		snprintf(buf, len, "%" PRIu64 "K", v >> 10);
	else
		snprintf(buf, len, "%" PRIu64, v);
}

static void format_micros(char *buf, size_t len, uint64_t us)
{
	if (us != 0 && us % 1000000 == 0)
		snprintf(buf, len, "%" PRIu64 "s", us / 1000000);
	else if (us != 0 && us % 1000 == 0)
		snprintf(buf, len, "%" PRIu64 "ms", us / 1000);
	else
		snprintf(buf, len, "%" PRIu64 "us", us);
}

static void format_duration(char *buf, size_t len, uint64_t ms)
{
	if (ms != 0 && ms % 3600000 == 0)
		snprintf(buf, len, "%" PRIu64 "h", ms / 3600000);
	else if (ms != 0 && ms % 1000 == 0)
		snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
	else
		snprintf(buf, len, "%" PRIu64 "ms", ms);
}

/*
 * Parse value for key k and store it in *cfg.  On error return DKV_EINVAL
 * with the reason, without the key's name, in why ("100 is not a power of
 * two between 64 and 1024"); *cfg is unchanged.
 */
static int set_value(dkv_config *cfg, const key_info *k, const char *value,
		     char *why, size_t whylen)
{
	void *field = (char *)cfg + k->off;
	char sv[256], lo[32], hi[32];
	uint64_t x;
	int i;

	shown(sv, sizeof(sv), value);
	if (value[0] == '\0' && k->type != CT_STR && k->type != CT_HOSTLIST) {
		snprintf(why, whylen, "no value given");
		return DKV_EINVAL;
	}
	switch (k->type) {
	case CT_STR: {
		size_t n = strlen(value);
		if (n < k->min) {
			snprintf(why, whylen, "must not be empty");
			return DKV_EINVAL;
		}
		if (n > k->max) {
			snprintf(why, whylen, "%s is longer than %" PRIu64 " bytes", sv, k->max);
			return DKV_EINVAL;
		}
		for (size_t j = 0; j < n; j++) {
			unsigned char c = (unsigned char)value[j];
			if (c < 0x20 || c == 0x7f) {
				snprintf(why, whylen, "%s contains a control byte", sv);
				return DKV_EINVAL;
			}
		}
		goto store_string;
	}
	case CT_HOSTPORT:
		if (dkv_config_hostport(value, strlen(value), NULL, 0, NULL) != 0) {
			snprintf(why, whylen, "%s is not HOST:PORT with a port from 1 to 65535", sv);
			return DKV_EINVAL;
		}
		goto store_string;
	case CT_HOSTLIST: {
		size_t pos = 0, b, e;
		if (list_is_empty(value))
			goto store_string;
		while (list_next(value, &pos, &b, &e)) {
			if (dkv_config_hostport(value + b, e - b, NULL, 0, NULL) != 0) {
				char one[256];
				size_t n = e - b < sizeof(one) - 1 ? e - b : sizeof(one) - 1;
				memcpy(one, value + b, n);
				one[n] = '\0';
				shown(sv, sizeof(sv), one);
				snprintf(why, whylen, "'%s' is not HOST:PORT with a port from 1 to 65535", sv);
				return DKV_EINVAL;
			}
		}
		goto store_string;
	}
	case CT_UINT:
		if (!parse_number(value, &x) || x < k->min || x > k->max) {
			snprintf(why, whylen, "%s is not a number between %" PRIu64 " and %" PRIu64,
				 sv, k->min, k->max);
			return DKV_EINVAL;
		}
		*(uint32_t *)field = (uint32_t)x;
		return 0;
	case CT_POW2:
		if (!parse_number(value, &x) || x < k->min || x > k->max || (x & (x - 1)) != 0) {
			snprintf(why, whylen, "%s is not a power of two between %" PRIu64 " and %" PRIu64,
				 sv, k->min, k->max);
			return DKV_EINVAL;
		}
		*(uint32_t *)field = (uint32_t)x;
		return 0;
	case CT_QUORUM:
		if (strcmp(value, "one") == 0) {
			*(int32_t *)field = DKV_QUORUM_ONE;
		} else if (strcmp(value, "quorum") == 0) {
			*(int32_t *)field = DKV_QUORUM_QUORUM;
		} else if (strcmp(value, "all") == 0) {
			*(int32_t *)field = DKV_QUORUM_ALL;
		} else if (parse_number(value, &x) && x >= k->min && x <= k->max) {
			*(int32_t *)field = (int32_t)x;
		} else {
			snprintf(why, whylen, "%s is not one, quorum, all or a number between %"
				 PRIu64 " and %" PRIu64, sv, k->min, k->max);
			return DKV_EINVAL;
		}
		return 0;
	case CT_SYNC:
		i = enum_index(sync_names, 3, value);
		if (i < 0) {
			snprintf(why, whylen, "%s is not none, interval or always", sv);
			return DKV_EINVAL;
		}
		*(dkv_config_sync *)field = (dkv_config_sync)i;
		return 0;
	case CT_LOGLEVEL:
		i = enum_index(level_names, 4, value);
		if (i < 0) {
			snprintf(why, whylen, "%s is not error, warning, info or debug", sv);
			return DKV_EINVAL;
		}
		*(dkv_log_level *)field = (dkv_log_level)i;
		return 0;
	case CT_SIZE:
		if (!parse_size(value, &x) || x < k->min || x > k->max) {
			format_size(lo, sizeof(lo), k->min);
			format_size(hi, sizeof(hi), k->max);
			snprintf(why, whylen, "%s is not a size between %s and %s"
				 " (bytes, or with K, M, G)", sv, lo, hi);
			return DKV_EINVAL;
		}
		*(uint64_t *)field = x;
		return 0;
	case CT_DURATION:
		if (!parse_duration(value, &x) || x < k->min || x > k->max) {
			format_duration(lo, sizeof(lo), k->min);
			format_duration(hi, sizeof(hi), k->max);
			snprintf(why, whylen, "%s is not a duration between %s and %s"
				 " (ms, or with ms, s, m, h)", sv, lo, hi);
			return DKV_EINVAL;
		}
		*(uint32_t *)field = (uint32_t)x;
		return 0;
	case CT_SECONDS:
		if (!parse_duration_as(value, &x, 1000) || x < k->min || x > k->max) {
			format_duration(lo, sizeof(lo), k->min);
			format_duration(hi, sizeof(hi), k->max);
			snprintf(why, whylen, "%s is not a duration between %s and %s"
				 " (seconds, or with ms, s, m, h)", sv, lo, hi);
			return DKV_EINVAL;
		}
		*(uint32_t *)field = (uint32_t)x;
		return 0;
	case CT_MICROS:
		if (!parse_micros(value, &x) || x < k->min || x > k->max) {
			format_micros(lo, sizeof(lo), k->min);
			format_micros(hi, sizeof(hi), k->max);
			snprintf(why, whylen, "%s is not a duration between %s and %s"
				 " (microseconds, or with us, ms, s)", sv, lo, hi);
			return DKV_EINVAL;
		}
		*(uint32_t *)field = (uint32_t)x;
		return 0;
	}
	snprintf(why, whylen, "internal error: key of unknown type");
	return DKV_EINVAL;

store_string: {
		char *copy = strdup(value);
		if (!copy) {
			snprintf(why, whylen, "out of memory");
			return -ENOMEM;
		}
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
}

static int format_value(const dkv_config *cfg, const key_info *k, char *buf, size_t len)
{
	const void *field = (const char *)cfg + k->off;
	char tmp[64] = "";
	const char *s = tmp;
	int32_t q;

	switch (k->type) {
	case CT_STR:
	case CT_HOSTPORT:
	case CT_HOSTLIST:
		s = *(char *const *)field ? *(char *const *)field : "";
		break;
	case CT_UINT:
	case CT_POW2:
		snprintf(tmp, sizeof(tmp), "%" PRIu32, *(const uint32_t *)field);
		break;
	case CT_QUORUM:
		q = *(const int32_t *)field;
		if (q == DKV_QUORUM_ONE)
			s = "one";
		else if (q == DKV_QUORUM_QUORUM)
			s = "quorum";
		else if (q == DKV_QUORUM_ALL)
			s = "all";
		else
			snprintf(tmp, sizeof(tmp), "%" PRId32, q);
		break;
	case CT_SYNC: {
		int v = (int)*(const dkv_config_sync *)field;
		s = v >= 0 && v < 3 ? sync_names[v] : "?";
		break;
	}
	case CT_LOGLEVEL: {
		int v = (int)*(const dkv_log_level *)field;
		s = v >= 0 && v < 4 ? level_names[v] : "?";
		break;
	}
	case CT_SIZE:
		format_size(tmp, sizeof(tmp), *(const uint64_t *)field);
		break;
	case CT_DURATION:
	case CT_SECONDS:
		format_duration(tmp, sizeof(tmp), *(const uint32_t *)field);
		break;
	case CT_MICROS:
		format_micros(tmp, sizeof(tmp), *(const uint32_t *)field);
		break;
	}
	if (strlen(s) + 1 > len)
		return DKV_ETOOBIG;
	memcpy(buf, s, strlen(s) + 1);
	return 0;
}

/* ---- the struct ----------------------------------------------------------- */

static bool is_string_type(ctype t)
{
	return t == CT_STR || t == CT_HOSTPORT || t == CT_HOSTLIST;
}

/* The field of string key i (through void *: offsetof keeps it aligned). */
static char **str_field(dkv_config *cfg, int i)
{
	void *p = (char *)cfg + keys[i].off;
	return p;
}

void dkv_config_free(dkv_config *cfg)
{
	for (int i = 0; i < DKV_CONFIG_NKEYS; i++)
		if (is_string_type(keys[i].type))
			free(*str_field(cfg, i));
	memset(cfg, 0, sizeof(*cfg));
}

int dkv_config_init(dkv_config *cfg)
{
	char why[512];
	memset(cfg, 0, sizeof(*cfg));
	for (int i = 0; i < DKV_CONFIG_NKEYS; i++) {
		int rc = set_value(cfg, &keys[i], keys[i].def, why, sizeof(why));
		if (rc != 0) {
			/* Only -ENOMEM: every default parses (a unit test says so). */
			dkv_config_free(cfg);
			return rc == -ENOMEM ? rc : DKV_EINVAL;
		}
	}
	return 0;
}

int dkv_config_copy(dkv_config *dst, const dkv_config *src)
{
	*dst = *src;
	for (int i = 0; i < DKV_CONFIG_NKEYS; i++) {
		if (!is_string_type(keys[i].type))
			continue;
		char **f = str_field(dst, i);
		if (*f && !(*f = strdup(*f))) {
			/* Null the rest so that free sees only our copies. */
			for (int j = i + 1; j < DKV_CONFIG_NKEYS; j++)
				if (is_string_type(keys[j].type))
					*str_field(dst, j) = NULL;
			dkv_config_free(dst);
			return -ENOMEM;
		}
	}
	return 0;
}

int dkv_config_set(dkv_config *cfg, const char *key, const char *value,
		   char *err, size_t errlen)
{
	char why[512], sk[256];
	int i = key_index(key, strlen(key));
	if (i < 0) {
		snprintf(err, errlen, "unknown key '%s'", shown(sk, sizeof(sk), key));
		return DKV_EINVAL;
	}
	int rc = set_value(cfg, &keys[i], value, why, sizeof(why));
	if (rc == 0)
		cfg->explicitly_set |= UINT64_C(1) << i;
	if (rc != 0)
		snprintf(err, errlen, "%s: %s", keys[i].name, why);
	return rc;
}

bool dkv_config_is_set(const dkv_config *cfg, const char *key)
{
	int i = key_index(key, strlen(key));

	return i >= 0 && (cfg->explicitly_set >> i & 1) != 0;
}

int dkv_config_get(const dkv_config *cfg, const char *key, char *buf, size_t len)
{
	int i = key_index(key, strlen(key));
	if (i < 0)
		return DKV_ENOTFOUND;
	return format_value(cfg, &keys[i], buf, len);
}

uint32_t dkv_config_quorum(int32_t q, uint32_t n_val)
{
	switch (q) {
	case DKV_QUORUM_ONE:
		return 1;
	case DKV_QUORUM_QUORUM:
		return n_val / 2 + 1;
	case DKV_QUORUM_ALL:
		return n_val;
	default:
		return q > 0 ? (uint32_t)q : 1;
	}
}

/* The address a face listens on: value ("off", HOST:PORT, or empty for
 * listen's loopback host, else 127.0.0.1, at listen's port + delta). */
static int face_listen(const dkv_config *cfg, const char *key, const char *value,
		       const char *what, const char *page, unsigned delta, char *out,
		       size_t outlen, char *err, size_t errlen)
{
	char host[256];
	uint16_t port;
	struct in_addr a4;
	struct in6_addr a6;
	bool loop;

	if (strcmp(value, "off") == 0) {
		snprintf(out, outlen, "%s", "");
		return 0;
	}
	if (value[0] != '\0') {
		if (dkv_config_hostport(value, strlen(value), host, sizeof(host), &port) != 0) {
			snprintf(err, errlen, "%s: \"%s\" is not HOST:PORT with a port from 1 "
				 "to 65535, or off", key, value);
			return DKV_EINVAL;
		}
		/* an address given as such must be loopback; a name is resolved
		 * (and refused the same way) when the face starts */
		if ((inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) != 127) ||
		    (inet_pton(AF_INET6, host, &a6) == 1 && !IN6_IS_ADDR_LOOPBACK(&a6))) {
			snprintf(err, errlen, "%s: %s is not a loopback address; the %s face "
				 "has no authentication yet, so it serves only this machine (127.0.0.0/8 "
				 "or ::1; %s)", key, value, what, page);
			return DKV_EINVAL;
		}
		snprintf(out, outlen, "%s", value);
		return 0;
	}
	if (dkv_config_hostport(cfg->listen, strlen(cfg->listen), host, sizeof(host), &port) != 0) {
		snprintf(err, errlen, "listen: \"%s\" is not HOST:PORT", cfg->listen);
		return DKV_EINVAL;
	}
	loop = strcmp(host, "localhost") == 0 ||
	       (inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127) ||
	       (inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6));
	port = port > 65535 - delta ? (uint16_t)(port - delta) : (uint16_t)(port + delta);
	if (!loop)
		snprintf(out, outlen, "127.0.0.1:%u", (unsigned)port);
	else if (strchr(host, ':') != NULL)
		snprintf(out, outlen, "[%s]:%u", host, (unsigned)port);
	else
		snprintf(out, outlen, "%s:%u", host, (unsigned)port);
	return 0;
}

int dkv_config_loopback_only(const char *host, bool *yes, char *why, size_t whylen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res, *a;
	int rc = getaddrinfo(host, NULL, &hints, &res);

	if (rc != 0) {
		snprintf(why, whylen, "%s", gai_strerror(rc));
		return DKV_EINVAL;
	}
	*yes = true;
	for (a = res; a != NULL; a = a->ai_next) {
		if (a->ai_family == AF_INET) {
			const struct sockaddr_in *s = (const struct sockaddr_in *)a->ai_addr;

			*yes = *yes && (ntohl(s->sin_addr.s_addr) >> 24) == 127;
		} else if (a->ai_family == AF_INET6) {
			const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a->ai_addr;

			*yes = *yes && IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
		} else {
			*yes = false;
		}
	}
	freeaddrinfo(res);
	return 0;
}

int dkv_config_face_address(const char *key, const char *la, const char *what,
			    const char *page, char *host, size_t hostlen, uint16_t *port,
			    char *err, size_t errlen)
{
	char why[256];
	bool loop = false;

	if (dkv_config_hostport(la, strlen(la), host, hostlen, port) != 0) {
		snprintf(err, errlen, "%s %s: not HOST:PORT", key, la);
		return DKV_EINVAL;
	}
	if (dkv_config_loopback_only(host, &loop, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s %s: %s", key, la, why);
		return DKV_EINVAL;
	}
	if (!loop) {
		snprintf(err, errlen, "%s %s: not a loopback address; the %s face has no "
			 "authentication yet, so it serves only this machine (127.0.0.0/8 or "
			 "::1; %s)", key, la, what, page);
		return DKV_EINVAL;
	}
	return 0;
}

int dkv_config_http_listen(const dkv_config *cfg, char *out, size_t outlen, char *err,
			   size_t errlen)
{
	return face_listen(cfg, "http_listen", cfg->http_listen, "HTTP", "dynkv-http(7)", 1000,
			   out, outlen, err, errlen);
}

int dkv_config_resp_listen(const dkv_config *cfg, char *out, size_t outlen, char *err,
			   size_t errlen)
{
	return face_listen(cfg, "resp_listen", cfg->resp_listen, "Redis protocol",
			   "dynkv-resp(7)", 2000, out, outlen, err, errlen);
}

int dkv_config_check(const dkv_config *cfg, char *err, size_t errlen)
{
	char http[320];

	if (dkv_config_http_listen(cfg, http, sizeof(http), err, errlen) != 0 ||
	    dkv_config_resp_listen(cfg, http, sizeof(http), err, errlen) != 0)
		return DKV_EINVAL;
	if (strcmp(cfg->resp_siblings, "error") != 0 && strcmp(cfg->resp_siblings, "newest") != 0) {
		snprintf(err, errlen, "resp_siblings: \"%s\" is neither error nor newest",
			 cfg->resp_siblings);
		return DKV_EINVAL;
	}
	if (cfg->r > 0 && (uint32_t)cfg->r > cfg->n_val) {
		snprintf(err, errlen, "r = %" PRId32 " is more than n_val = %" PRIu32,
			 cfg->r, cfg->n_val);
		return DKV_EINVAL;
	}
	if (cfg->w > 0 && (uint32_t)cfg->w > cfg->n_val) {
		snprintf(err, errlen, "w = %" PRId32 " is more than n_val = %" PRIu32,
			 cfg->w, cfg->n_val);
		return DKV_EINVAL;
	}
	uint64_t need = cfg->max_key_size + cfg->max_value_size + DKV_CONFIG_FRAME_OVERHEAD;
	if (cfg->max_frame < need) {
		char f[32], k[32], v[32], o[32], n[32];
		format_size(f, sizeof(f), cfg->max_frame);
		format_size(k, sizeof(k), cfg->max_key_size);
		format_size(v, sizeof(v), cfg->max_value_size);
		format_size(o, sizeof(o), DKV_CONFIG_FRAME_OVERHEAD);
		snprintf(n, sizeof(n), "%" PRIu64, need);
		snprintf(err, errlen, "max_frame = %s is less than max_key_size %s"
			 " + max_value_size %s + %s of overhead = %s bytes",
			 f, k, v, o, n);
		return DKV_EINVAL;
	}
	return 0;
}

/* ---- the file ------------------------------------------------------------- */

/* Parse one line (len bytes, no newline, no NUL) into *cfg; the reason for
 * an error goes to why.  seen[i] is the line key i was set on, 0 if none. */
static int parse_line(dkv_config *cfg, const char *line, size_t len,
		      unsigned lineno, unsigned seen[], char *why, size_t whylen)
{
	char value[DKV_CONFIG_LINE_MAX + 1];
	char sk[256];
	size_t b = 0, e = len;

	while (b < e && is_blank(line[b]))
		b++;
	while (e > b && is_blank(line[e - 1]))
		e--;
	if (b == e || line[b] == '#')
		return 0;

	const char *eq = memchr(line + b, '=', e - b);
	if (!eq) {
		snprintf(why, whylen, "expected 'key = value'");
		return DKV_EINVAL;
	}
	size_t kb = b, ke = (size_t)(eq - line);
	while (ke > kb && is_blank(line[ke - 1]))
		ke--;
	if (ke == kb) {
		snprintf(why, whylen, "no key before '='");
		return DKV_EINVAL;
	}
	int ki = key_index(line + kb, ke - kb);
	if (ki < 0) {
		char kname[DKV_CONFIG_LINE_MAX + 1];
		memcpy(kname, line + kb, ke - kb);
		kname[ke - kb] = '\0';
		snprintf(why, whylen, "unknown key '%s'", shown(sk, sizeof(sk), kname));
		return DKV_EINVAL;
	}
	if (seen[ki]) {
		snprintf(why, whylen, "%s: set twice (first on line %u)", keys[ki].name, seen[ki]);
		return DKV_EINVAL;
	}

	size_t vb = (size_t)(eq - line) + 1, n = 0;
	while (vb < e && is_blank(line[vb]))
		vb++;
	if (vb < e && line[vb] == '"') {
		size_t i = vb + 1;
		for (;;) {
			if (i >= e) {
				snprintf(why, whylen, "%s: no closing quote", keys[ki].name);
				return DKV_EINVAL;
			}
			char c = line[i++];
			if (c == '"')
				break;
			if (c == '\\') {
				if (i < e && (line[i] == '"' || line[i] == '\\')) {
					value[n++] = line[i++];
					continue;
				}
				snprintf(why, whylen, "%s: only \\\" and \\\\ may follow a"
					 " backslash in quotes", keys[ki].name);
				return DKV_EINVAL;
			}
			value[n++] = c;
		}
		while (i < e && is_blank(line[i]))
			i++;
		if (i < e && line[i] != '#') {
			snprintf(why, whylen, "%s: text after the closing quote", keys[ki].name);
			return DKV_EINVAL;
		}
	} else {
		size_t i = vb;
		while (i < e && !(line[i] == '#' && (i == vb || is_blank(line[i - 1]))))
			i++;
		while (i > vb && is_blank(line[i - 1]))
			i--;
		n = i - vb;
		memcpy(value, line + vb, n);
	}
	value[n] = '\0';

	char vwhy[512];
	int rc = set_value(cfg, &keys[ki], value, vwhy, sizeof(vwhy));
	if (rc == 0)
		cfg->explicitly_set |= UINT64_C(1) << ki;
	if (rc != 0) {
		snprintf(why, whylen, "%s: %s", keys[ki].name, vwhy);
		return rc;
	}
	seen[ki] = lineno;
	return 0;
}

int dkv_config_load_buffer(dkv_config *cfg, const char *name, const void *buf,
			   size_t len, char *err, size_t errlen)
{
	const char *p = buf, *end = p + len;
	unsigned seen[DKV_CONFIG_NKEYS] = { 0 };
	char why[1024];
	unsigned lineno = 0;
	dkv_config tmp;
	int rc;

	if (len > DKV_CONFIG_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %u bytes", name,
			 (unsigned)DKV_CONFIG_FILE_MAX);
		return DKV_EINVAL;
	}
	/* Parse into a copy, so that an error leaves *cfg as it was. */
	rc = dkv_config_copy(&tmp, cfg);
	if (rc != 0) {
		snprintf(err, errlen, "%s: out of memory", name);
		return rc;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		lineno++;
		if (n > DKV_CONFIG_LINE_MAX) {
			snprintf(err, errlen, "%s:%u: line longer than %u bytes", name,
				 lineno, (unsigned)DKV_CONFIG_LINE_MAX);
			rc = DKV_EINVAL;
			goto out_free_tmp;
		}
		if (memchr(p, '\0', n)) {
			snprintf(err, errlen, "%s:%u: NUL byte in line", name, lineno);
			rc = DKV_EINVAL;
			goto out_free_tmp;
		}
		rc = parse_line(&tmp, p, n, lineno, seen, why, sizeof(why));
		if (rc != 0) {
			snprintf(err, errlen, "%s:%u: %s", name, lineno, why);
			goto out_free_tmp;
		}
		p += n + (nl != NULL);
	}
	dkv_config_free(cfg);
	*cfg = tmp;
	return 0;

out_free_tmp:
	dkv_config_free(&tmp);
	return rc;
}

int dkv_config_load_file(dkv_config *cfg, const char *path, char *err, size_t errlen)
{
	int rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	/* Read at most one byte past the limit: enough to know it is too big. */
	size_t cap = DKV_CONFIG_FILE_MAX + 1, len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		rc = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out_close;
	}
	while (len < cap) {
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out_free;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	rc = dkv_config_load_buffer(cfg, path, buf, len, err, errlen);
out_free:
	free(buf);
out_close:
	close(fd);
	return rc;
}

/* ---- the command line ----------------------------------------------------- */

int dkv_config_parse_args(dkv_config *cfg, int argc, char *const argv[],
			  dkv_config_cmdline *cl, char *err, size_t errlen)
{
	char why[512], sa[256];

	memset(cl, 0, sizeof(*cl));
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			cl->help = true;
			continue;
		}
		if (strcmp(arg, "--version") == 0) {
			cl->version = true;
			continue;
		}
		if (arg[0] != '-') {
			snprintf(err, errlen, "unexpected argument '%s'", shown(sa, sizeof(sa), arg));
			return DKV_EINVAL;
		}
		if (arg[1] != '-' || arg[2] == '\0') {
			snprintf(err, errlen, "unknown option '%s'", shown(sa, sizeof(sa), arg));
			return DKV_EINVAL;
		}
		const char *name = arg + 2;
		const char *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		const char *value;
		int ki = -1;
		bool is_config = nlen == 6 && memcmp(name, "config", 6) == 0;
		if (!is_config) {
			ki = option_index(name, nlen);
			if (ki < 0) {
				char opt[256];
				size_t n = nlen + 2 < sizeof(opt) ? nlen + 2 : sizeof(opt) - 1;
				memcpy(opt, arg, n);
				opt[n] = '\0';
				snprintf(err, errlen, "unknown option '%s'", shown(sa, sizeof(sa), opt));
				return DKV_EINVAL;
			}
		}
		if (eq) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			snprintf(err, errlen, "%s needs a value", arg);
			return DKV_EINVAL;
		}
		if (is_config) {
			cl->config_path = value;
			continue;
		}
		int rc = set_value(cfg, &keys[ki], value, why, sizeof(why));
		if (rc == 0)
			cfg->explicitly_set |= UINT64_C(1) << ki;
		if (rc != 0) {
			dkv_config_key k;
			dkv_config_key_at((size_t)ki, &k);
			snprintf(err, errlen, "%s: %s", k.option, why);
			return rc;
		}
	}
	return 0;
}

int dkv_config_from_cmdline(dkv_config *cfg, int argc, char *const argv[],
			    const char *default_path, dkv_config_cmdline *cl,
			    char *err, size_t errlen)
{
	dkv_config scratch;
	int rc;

	rc = dkv_config_init(cfg);
	if (rc != 0) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	/* A first pass on a scratch copy finds --config and any bad option
	 * before the file is read. */
	rc = dkv_config_copy(&scratch, cfg);
	if (rc != 0) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	rc = dkv_config_parse_args(&scratch, argc, argv, cl, err, errlen);
	dkv_config_free(&scratch);
	if (rc != 0 || cl->help || cl->version)
		return rc;

	if (cl->config_path) {
		rc = dkv_config_load_file(cfg, cl->config_path, err, errlen);
	} else if (default_path) {
		rc = dkv_config_load_file(cfg, default_path, err, errlen);
		if (rc == -ENOENT)
			rc = 0;
	}
	if (rc != 0)
		return rc;
	rc = dkv_config_parse_args(cfg, argc, argv, cl, err, errlen);
	if (rc != 0)
		return rc;
	return dkv_config_check(cfg, err, errlen);
}
