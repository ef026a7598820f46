/*
 * test_capacity.c -- the load window and the verdict (src/capacity.c):
 * slots age out, the span is the uptime until the window is full, and each
 * threshold decides as dynkv.conf(5) says (and only it).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <string.h>

#include "capacity.h"
#include "dkv_config.h"
#include "hist.h"

Test(capacity, the_window_counts_what_is_recent_and_forgets_the_rest)
{
	capacity *c;
	hist *h;
	uint64_t span;

	cr_assert_eq(capacity_new(&c, 6000, 1000), 0);   /* a node started at 1 s */
	cr_assert_eq(hist_new(&h), 0);
	for (int i = 0; i < 100; i++)
		capacity_record(c, 1000 + (uint64_t)i, 500);   /* 100 requests of 0.5 ms */
	cr_assert_eq(capacity_window(c, 2000, h, &span), 0);
	cr_assert_eq(hist_count(h), 100);
	cr_assert_eq(span, 1000, "the span is the time since the first request: %llu",
		     (unsigned long long)span);
	for (int i = 0; i < 10; i++)
		capacity_record(c, 4000, 90000);   /* 10 slow ones later */
	cr_assert_eq(capacity_window(c, 5000, h, &span), 0);
	cr_assert_eq(hist_count(h), 110);
	cr_assert_gt(hist_percentile(h, 99.0), 80000);
	cr_assert_eq(span, 4000);
	/* 6 s after the first ones, their slot is out of the window */
	cr_assert_eq(capacity_window(c, 8000, h, &span), 0);
	cr_assert_eq(hist_count(h), 10, "%llu", (unsigned long long)hist_count(h));
	cr_assert_eq(span, 6000);
	/* and a record that reuses their slot starts it empty */
	capacity_record(c, 13500, 100);
	cr_assert_eq(capacity_window(c, 13500, h, &span), 0);
	cr_assert_eq(hist_count(h), 1);
	hist_free(h);
	capacity_free(c);
}

Test(capacity, each_threshold_decides_and_only_it)
{
	dkv_config cfg;
	char why[256];
	capacity_figures f = { .ops_per_s = 100, .ops = 6000, .p99_us = 1000, .disk_bytes = 1000 };

	cr_assert_eq(dkv_config_init(&cfg), 0);
	cfg.capacity_grow_ops = 20000;
	cfg.capacity_grow_p99 = 50000;
	cfg.capacity_grow_disk = 0;
	cfg.capacity_shrink_ops = 2000;
	cr_assert_eq(capacity_assess(&f, &cfg, why, sizeof(why)), CAPACITY_SHRINK, "%s", why);
	f.ops_per_s = 5000;
	cr_assert_eq(capacity_assess(&f, &cfg, why, sizeof(why)), CAPACITY_HOLD, "%s", why);
	f.ops_per_s = 20001;
	cr_assert_eq(capacity_assess(&f, &cfg, why, sizeof(why)), CAPACITY_GROW, "%s", why);
	cr_assert_not_null(strstr(why, "capacity_grow_ops"), "%s", why);
	/* a slow p99 grows -- over enough requests; a few slow ones do not */
	f.ops_per_s = 100;
	f.p99_us = 60000;
	cr_assert_eq(capacity_assess(&f, &cfg, why, sizeof(why)), CAPACITY_GROW, "%s", why);
	cr_assert_not_null(strstr(why, "capacity_grow_p99"), "%s", why);
	f.ops = CAPACITY_MIN_OPS - 1;
	cr_assert_eq(capacity_assess(&f, &cfg, why, sizeof(why)), CAPACITY_SHRINK, "%s", why);
	/* a p99 above half its limit holds a shrink back */
	f.ops = 6000;
	f.p99_us = 30000;
	cr_assert_eq(capacity_assess(&f, &cfg, why, sizeof(why)), CAPACITY_HOLD, "%s", why);
	/* disk: looked at only when set */
	f.p99_us = 1000;
	f.disk_bytes = 1ull << 40;
	cr_assert_eq(capacity_assess(&f, &cfg, why, sizeof(why)), CAPACITY_SHRINK, "%s", why);
	cfg.capacity_grow_disk = 1ull << 39;
	cr_assert_eq(capacity_assess(&f, &cfg, why, sizeof(why)), CAPACITY_GROW, "%s", why);
	cr_assert_not_null(strstr(why, "capacity_grow_disk"), "%s", why);
	f.disk_bytes = (1ull << 38) + 1;   /* above half: no shrink */
	cr_assert_eq(capacity_assess(&f, &cfg, why, sizeof(why)), CAPACITY_HOLD, "%s", why);
	cr_assert_str_eq(capacity_verdict_name(CAPACITY_GROW), "grow");
	cr_assert_str_eq(capacity_verdict_name(CAPACITY_SHRINK), "shrink");
	cr_assert_str_eq(capacity_verdict_name(CAPACITY_HOLD), "hold");
	dkv_config_free(&cfg);
}
