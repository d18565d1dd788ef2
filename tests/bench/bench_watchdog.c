/*
 * bench_watchdog: how late does the stall warning come with many
 * transactions in DATA at once? Adds N entries (default 1000) to a real
 * registry watched by the real watchdog thread, warn_after 1 s, in two
 * shapes: all at the same moment, and spread over one second (N distinct
 * deadlines). Prints the lateness of the warnings (report time minus
 * DATA + warn_after) and the cost of add/remove under the lock.
 * Exit 1 when a warning is 1 s late or more, or one is missing.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry.h"
#include "watchdog.h"

#define WARN_AFTER_MS 1000

static atomic_int reported;
static int64_t *lateness;
static size_t capacity;

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Lateness from the microsecond clock: data_at is in ms, taken just before. */
static void
report(const struct stall_view *v, const void *arg)
{
	(void)arg;
	int i = atomic_fetch_add(&reported, 1);
	if ((size_t)i < capacity)
		lateness[i] = now_us() - (v->data_at + WARN_AFTER_MS) * 1000;
}

static int
cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int
run(const char *shape, size_t n, int64_t spread_ms)
{
	struct registry reg;
	struct watchdog wd;
	struct stall_entry *e = calloc(n, sizeof *e);
	int64_t add_us = 0, remove_us;

	capacity = n;
	lateness = calloc(n, sizeof *lateness);
	atomic_store(&reported, 0);
	if (e == NULL || lateness == NULL || registry_init(&reg, WARN_AFTER_MS, 0) != 0 ||
	    watchdog_start(&wd, &reg, report, NULL) != 0)
		return 1;
	int64_t start = registry_clock_ms();
	for (size_t i = 0; i < n; i++) {
		if (spread_ms > 0) {
			int64_t due = start + (int64_t)i * spread_ms / (int64_t)n;
			while (registry_clock_ms() < due) {
				struct timespec ts = { 0, 200000 };
				nanosleep(&ts, NULL);
			}
		}
		snprintf(e[i].view.session, sizeof e[i].view.session, "%016zx", i);
		int64_t t0 = now_us();
		registry_add(&reg, &e[i], registry_clock_ms());
		add_us += now_us() - t0;
	}
	int64_t deadline = registry_clock_ms() + WARN_AFTER_MS + 3000;
	while ((size_t)atomic_load(&reported) < n && registry_clock_ms() < deadline) {
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	int64_t t0 = now_us();
	for (size_t i = 0; i < n; i++)
		registry_remove(&reg, &e[i]);
	remove_us = now_us() - t0;
	watchdog_stop(&wd);
	registry_destroy(&reg);

	size_t got = (size_t)atomic_load(&reported);
	qsort(lateness, got, sizeof *lateness, cmp);
	int64_t max = got ? lateness[got - 1] : -1;
	printf("%-28s %5zu in DATA: %5zu warned; lateness ms: median %6.1f  p99 %6.1f  max %6.1f;"
	       " add %.2f us, remove %.2f us each\n",
	       shape, n, got, got ? lateness[got / 2] / 1000.0 : -1,
	       got ? lateness[(got * 99) / 100 < got ? (got * 99) / 100 : got - 1] / 1000.0 : -1,
	       max / 1000.0, (double)add_us / (double)n, (double)remove_us / (double)n);
	free(e);
	free(lateness);
	/* data_at has ms resolution: allow that millisecond, then 1 s target */
	return got == n && max < 1000 * 1000 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 1000;
	int rc = 0;

	printf("stall watchdog, warn_after %d ms (target: every warning within 1 s of it)\n",
	       WARN_AFTER_MS);
	rc |= run("all at once", n, 0);
	rc |= run("spread over 1 s", n, 1000);
	rc |= run("all at once (x10)", n * 10, 0);
	printf("bench-watchdog: %s\n", rc ? "TARGET MISSED" : "targets met");
	return rc;
}
