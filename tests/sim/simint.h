/*
 * simint.h -- the state of one run of the fault suite, shared by
 * simfault.c (cluster, workload, faults, healing) and simcheck.c (the
 * checker).  See simfault.h.
 */
#ifndef DKV_SIMINT_H
#define DKV_SIMINT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dkv_config.h"
#include "node.h"
#include "powerio.h"
#include "proto.h"
#include "simfault.h"
#include "simworld.h"

#define SF_MAXN        7
#define SF_MAXOPS      160
#define SF_MAXSEEN     64
#define SF_MAXFAULTS   8
#define SF_MAXPOWER    16
#define SF_RING        64
#define SF_NEVER       UINT64_MAX   /* an op's end while it has no answer */
#define SF_SYNC_DELAY_MAX 20u       /* virtual ms a durability batch takes at most */

typedef enum sf_kind {
	SF_GET = 0,
	SF_PUT,            /* blind: no context */
	SF_PUT_CTX,        /* with the context of the key's latest get */
	SF_PUT_REPLACE,    /* replace mode */
	SF_DEL_CTX,
	SF_DEL_REPLACE,
	SF_NKINDS
} sf_kind;

typedef struct sf_op {
	sf_kind kind;
	int key;                   /* key number: the key is "k<key>" */
	char keyname[16];          /* "k<key>" */
	char value[32];            /* a put's value: "k<key>#w<op>" */
	size_t node;               /* the coordinator it was sent to */
	proto_opts o;              /* R, W, PR, PW, replace */
	long get_from;             /* the get whose context it carries, or -1 */
	uint64_t issue, end;       /* virtual ms sent; answered (SF_NEVER: not) */
	bool ok;                   /* true iff answered OK or VALUE */
	uint32_t code;             /* the error code of an ERROR answer */
	uint32_t seen[SF_MAXSEEN]; /* a get's values, as the ops that wrote them */
	size_t nseen;
	uint8_t *ctx;              /* a get's context (owned), or NULL */
	size_t ctxlen;
} sf_op;

typedef struct sf_fault {
	sf_fault_kind kind;
	uint64_t start, end;       /* ms into the run phase */
	size_t node;               /* the node of a crash, pause or disk fault */
	uint32_t side;             /* a partition's cut-off side, a node mask */
	unsigned moves;            /* a moving partition's moves so far */
	bool started, ended;       /* true iff fault_start / fault_end ran */
} sf_fault;

typedef struct sf_power {
	size_t node;
	uint64_t at;               /* virtual ms of the power loss */
} sf_power;

typedef struct sf {
	sf_opts opts;
	sf_result *res;
	simworld *sim;
	powerio *pio;
	size_t n;                          /* nodes */
	bool sync_always;                  /* true iff sync = always */
	uint64_t sync_interval;            /* sync_interval_ms with sync = interval */
	size_t nkeys;
	char addr[SF_MAXN][48];            /* "10.0.0.<i+1>:7070" */
	char dir[SF_MAXN][64];             /* the data directory, /dev/shm/dkv-sim-XXXXXX */
	dkv_config cfg[SF_MAXN];
	node *nd[SF_MAXN];                 /* NULL while crashed */
	dkv_log *log[SF_MAXN];             /* SF_LOGS set: DIR.log */
	char logpath[SF_MAXN][80];
	sf_op op[SF_MAXOPS];
	size_t nops;
	sf_fault fault[SF_MAXFAULTS];
	size_t nfaults;
	sf_power power[SF_MAXPOWER];       /* power losses, in order */
	size_t npower;
	uint32_t disk_failed;              /* nodes that had a disk fault (mask) */
	size_t joiner;                     /* a node that joins during the run, or SIZE_MAX */
	size_t leaver;                     /* a node that leaves during the run, or SIZE_MAX */
	uint64_t join_at, leave_at;        /* ms into the run phase */
	bool joined, leave_sent;
	uint64_t longest_pause;            /* ms */
	uint8_t *admin_reply;              /* the last admin answer (owned) */
	size_t admin_len;
	bool held[SF_MAXN][SF_RING];       /* aae: node holds partition */
	uint64_t rootv[SF_MAXN][SF_RING];  /* aae: its root */
} sf;

uint64_t sf_rand(sf *s, uint64_t n);
/* Record a failure (printf-style) and mark the run failed. */
void sf_fail(sf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The op a value names ("k<key>#w<op>") with its key in *key, or -1. */
long sf_value_op(const sf *s, const void *v, size_t len, int *key);
const char *sf_kind_name(sf_kind k);
/* The checker (simcheck.c): run once everything has healed. */
void sf_check(sf *s);

#endif /* DKV_SIMINT_H */
