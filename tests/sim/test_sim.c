/*
 * test_sim.c -- the simulated fault suite's driver (simfault.h): runs
 * seeds S, S+1, ... S+N-1 and reports in TAP, one line per seed, then a
 * line for the replay check (the first seed run again gives the same
 * trace hash), then the totals: seeds, faults by kind, ops acknowledged,
 * time.  A failing seed prints the command that replays it.
 *
 *   test_sim [--seeds N] [--seed S] [--max-nodes M] [--verbose] [--keep]
 *
 * Defaults: SIM_SEEDS and SIM_SEED from the environment, else 500 seeds
 * from 1 -- or 20 under the sanitizers (DKV_SANITIZERS=1, set by make
 * check in an --enable-sanitizers build), whose runs are ~10x slower.
 * `make check-sim SEEDS=N SEED=S` runs a long sweep.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "simfault.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? strtoull(v, NULL, 10) : dflt;
}

int main(int argc, char **argv)
{
	bool san = getenv("DKV_SANITIZERS") != NULL && strcmp(getenv("DKV_SANITIZERS"), "1") == 0;
	uint64_t seeds = env_u64("SIM_SEEDS", san ? 20 : 500);
	uint64_t first = env_u64("SIM_SEED", 1);
	uint64_t faults[SF_NFAULTS] = { 0 }, ops = 0, acked = 0, exempt = 0, failed = 0;
	uint64_t joins = 0, leaves = 0;
	uint64_t heal_max = 0;
	double t0 = now_s();
	sf_result res, again;
	sf_opts o;

	sf_opts_init(&o);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc)
			seeds = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			first = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--max-nodes") == 0 && i + 1 < argc)
			o.max_nodes = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--verbose") == 0)
			o.verbose = true;
		else if (strcmp(argv[i], "--keep") == 0)
			o.keep_dirs = true;
		else {
			fprintf(stderr, "usage: %s [--seeds N] [--seed S] [--max-nodes 3..7] "
				"[--verbose] [--keep]\n", argv[0]);
			return 2;
		}
	}
	if (seeds == 0) {   /* make distcheck: simulation runs are for the other builds */
		printf("1..0 # SKIP SIM_SEEDS=0: the simulated suite is not run in this build\n");
		return 0;
	}
	printf("1..%" PRIu64 "\n", seeds + 1);
	for (uint64_t k = 0; k < seeds; k++) {
		uint64_t seed = first + k;

		sf_run(seed, &o, &res);
		for (int f = 0; f < SF_NFAULTS; f++)
			faults[f] += res.faults[f];
		joins += res.joins;
		leaves += res.leaves;
		ops += res.ops;
		acked += res.acked;
		exempt += res.exempt;
		if (res.heal_ms > heal_max)
			heal_max = res.heal_ms;
		if (res.ok) {
			printf("ok %" PRIu64 " - seed %" PRIu64 ": %u nodes, sync %s, %" PRIu64
			       " ops, %" PRIu64 " acked, healed in %" PRIu64 " ms\n", k + 1, seed,
			       res.nodes, res.sync_always ? "always" : "interval", res.ops, res.acked,
			       res.heal_ms);
		} else {
			failed++;
			printf("not ok %" PRIu64 " - seed %" PRIu64 ": %u nodes, sync %s\n", k + 1, seed,
			       res.nodes, res.sync_always ? "always" : "interval");
			for (char *line = strtok(res.why, "\n"); line != NULL; line = strtok(NULL, "\n"))
				printf("#   %s\n", line);
			printf("# replay: %s --seed %" PRIu64 " --seeds 1 --max-nodes %u --verbose\n",
			       argv[0], seed, o.max_nodes);
		}
		fflush(stdout);
	}
	/* the same seed, the same run */
	sf_run(first, &o, &res);
	sf_run(first, &o, &again);
	if (res.trace == again.trace)
		printf("ok %" PRIu64 " - seed %" PRIu64 " replays: trace %016" PRIx64 " twice\n",
		       seeds + 1, first, res.trace);
	else {
		failed++;
		printf("not ok %" PRIu64 " - seed %" PRIu64 " does not replay: trace %016" PRIx64
		       " then %016" PRIx64 "\n", seeds + 1, first, res.trace, again.trace);
	}
	printf("# %" PRIu64 " seeds from %" PRIu64 " (%" PRIu64 " failed) in %.1f s: %" PRIu64
	       " ops, %" PRIu64 " acknowledged, %" PRIu64 " exempt by power loss; slowest heal "
	       "%" PRIu64 " virtual ms\n# faults:", seeds, first, failed, now_s() - t0, ops, acked,
	       exempt, heal_max);
	for (int f = 0; f < SF_NFAULTS; f++)
		printf(" %s %" PRIu64, sf_fault_name((sf_fault_kind)f), faults[f]);
	printf("; joins %" PRIu64 " leaves %" PRIu64 "\n", joins, leaves);
	return failed == 0 ? 0 : 1;
}
