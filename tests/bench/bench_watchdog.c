/*
 * bench_watchdog: how late does the stall warning come with many
 * transactions in DATA at once? Adds N entries (default 1000) to a real
 * registry watched by the real watchdog thread, warn_after 1 s, in two
 * shapes: all at the same moment, and spread over one second (N distinct
 * deadlines). Prints the lateness of the warnings (report time minus
 * DATA + warn_after) and the cost of add/remove under the lock.
 *
 * Then the same with a reader: LISTED_OPEN sessions open in the table of
 * open sessions (live.h), N of them in DATA and watched, and a thread
 * rendering the whole of /transactions (?limit=20000) every
 * READER_PERIOD_MS while a "callback" thread stores rows again and again
 * (live_publish, what every phase of a session does) and closes and opens
 * slots. The reader holds no lock a callback needs: the lateness stays,
 * and the worst store, open and close show that no callback waited for a
 * listing (each listing's time is printed beside them).
 * Exit 1 when a warning is 1 s late or more, or one is missing.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "expose.h"
#include "live.h"
#include "registry.h"
#include "watchdog.h"

#define LISTED_OPEN	20000
#define READER_PERIOD_MS 10

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

/* ---- with a reader listing every session ---------------------------------- */

struct reader {
	struct registry *reg;
	atomic_bool      stop;
	size_t           listings;
	int64_t          total_us, worst_us;
	size_t           rows;		/* "count" of the last listing */
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;

	while (!atomic_load(&r->stop)) {
		struct expose_query q = { .limit = EXPOSE_ROWS_MAX };
		size_t len;
		int64_t t0 = now_us();
		char *json = expose_sessions(r->reg, &q, registry_clock_ms(), &len);
		int64_t took = now_us() - t0;
		const char *count = json ? strstr(json + (len > 64 ? len - 64 : 0), "\"count\":") : NULL;
		r->rows = count ? strtoul(count + 8, NULL, 10) : 0;
		free(json);
		r->listings++;
		r->total_us += took;
		if (took > r->worst_us)
			r->worst_us = took;
		struct timespec ts = { 0, READER_PERIOD_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* Microseconds of each call: a histogram by microsecond, and the worst. */
#define LATENCY_US_MAX 1000

struct latency {
	size_t  calls;
	size_t  at[LATENCY_US_MAX + 1];	/* the last: LATENCY_US_MAX or more */
	int64_t worst_us;
};

static void
latency_add(struct latency *l, int64_t us)
{
	l->calls++;
	l->at[us < 0 ? 0 : us < LATENCY_US_MAX ? us : LATENCY_US_MAX]++;
	if (us > l->worst_us)
		l->worst_us = us;
}

/* The microseconds within which a share (0.999: 99.9 %) of the calls took. */
static int64_t
latency_pct(const struct latency *l, double share)
{
	size_t want = (size_t)((double)l->calls * share), seen = 0;

	for (int64_t us = 0; us <= LATENCY_US_MAX; us++) {
		seen += l->at[us];
		if (seen >= want && seen > 0)
			return us;
	}
	return LATENCY_US_MAX;
}

static void
fill_row(struct live_row *row, size_t i, enum live_phase phase)
{
	memset(row, 0, sizeof *row);
	snprintf(row->session, sizeof row->session, "%016zx", i);
	snprintf(row->client, sizeof row->client, "client-%zu.example.net[192.0.2.%zu]:%zu",
		 i, i % 250, 1024 + i % 60000);
	snprintf(row->helo, sizeof row->helo, "client-%zu.example.net", i);
	snprintf(row->sender, sizeof row->sender, "<sender-%zu@example.org>", i);
	snprintf(row->queue_id, sizeof row->queue_id, "4Q%09zX", i);
	row->phase = (uint8_t)phase;
	row->txn = 1;
	row->rcpt = 1;
	row->connect_at = row->since = registry_clock_ms();
}

static int
run_listed(size_t n, bool with_reader)
{
	struct registry reg;
	struct watchdog wd;
	struct reader rd = { .reg = &reg };
	pthread_t reader;
	struct stall_entry *e = calloc(n, sizeof *e);
	unsigned *refs = calloc(LISTED_OPEN, sizeof *refs);
	static struct latency publish, open_close, add;
	struct live_row row;

	memset(&publish, 0, sizeof publish);
	memset(&open_close, 0, sizeof open_close);
	memset(&add, 0, sizeof add);
	capacity = n;
	lateness = calloc(n, sizeof *lateness);
	atomic_store(&reported, 0);
	if (e == NULL || refs == NULL || lateness == NULL || n >= LISTED_OPEN ||
	    registry_init(&reg, WARN_AFTER_MS, 0) != 0 ||
	    watchdog_start(&wd, &reg, report, NULL) != 0)
		return 1;
	/* LISTED_OPEN sessions open, the first n of them about to enter DATA */
	for (size_t i = 0; i < LISTED_OPEN; i++) {
		refs[i] = live_open(&reg.live);
		fill_row(&row, i, i < n ? LIVE_RCPT : LIVE_HELO);
		live_publish(&reg.live, refs[i], &row);
	}
	atomic_store(&rd.stop, false);
	if (with_reader && pthread_create(&reader, NULL, reader_main, &rd) != 0)
		return 1;
	struct timespec settle = { 0, 50 * 1000000L };
	nanosleep(&settle, NULL);		/* the reader is listing */
	for (size_t i = 0; i < n; i++) {
		fill_row(&row, i, LIVE_DATA);
		snprintf(e[i].view.session, sizeof e[i].view.session, "%016zx", i);
		e[i].live_ref = refs[i];
		int64_t t0 = now_us();
		live_publish(&reg.live, refs[i], &row);
		registry_add(&reg, &e[i], registry_clock_ms());
		latency_add(&add, now_us() - t0);
	}
	/* until every warning came, what callbacks do to the others, timed one by one */
	int64_t deadline = registry_clock_ms() + WARN_AFTER_MS + 3000;
	for (size_t k = 0; (size_t)atomic_load(&reported) < n && registry_clock_ms() < deadline; k++) {
		size_t i = n + k % (LISTED_OPEN - n);
		fill_row(&row, i, k % 2 ? LIVE_MAIL : LIVE_HELO);
		int64_t t0 = now_us();
		live_publish(&reg.live, refs[i], &row);
		latency_add(&publish, now_us() - t0);
		if (k % 64 == 0) {
			t0 = now_us();
			live_close(&reg.live, refs[i]);
			refs[i] = live_open(&reg.live);
			latency_add(&open_close, now_us() - t0);
			live_publish(&reg.live, refs[i], &row);
		}
		if (k % 32 == 0) {
			/* callbacks come in bursts between network waits: leave
			 * the watchdog (and the reader) the cores between them */
			struct timespec ts = { 0, 50000 };
			nanosleep(&ts, NULL);
		}
	}
	atomic_store(&rd.stop, true);
	if (with_reader)
		pthread_join(reader, NULL);
	for (size_t i = 0; i < n; i++)
		registry_remove(&reg, &e[i]);
	watchdog_stop(&wd);
	registry_destroy(&reg);

	size_t got = (size_t)atomic_load(&reported);
	qsort(lateness, got, sizeof *lateness, cmp);
	int64_t max = got ? lateness[got - 1] : -1;
	printf("%-28s %5zu in DATA: %5zu warned; lateness ms: median %6.1f  p99 %6.1f  max %6.1f\n",
	       with_reader ? "20000 open, a reader listing" : "20000 open, no reader", n, got,
	       got ? lateness[got / 2] / 1000.0 : -1,
	       got ? lateness[(got * 99) / 100 < got ? (got * 99) / 100 : got - 1] / 1000.0 : -1,
	       max / 1000.0);
	if (with_reader)
		printf("    /transactions of all %d rendered %zu times (one every %d ms): %.1f ms each, "
		       "worst %.1f ms, %zu rows\n", LISTED_OPEN, rd.listings, READER_PERIOD_MS,
		       rd.listings ? (double)rd.total_us / (double)rd.listings / 1000.0 : -1,
		       (double)rd.worst_us / 1000.0, rd.rows);
	printf("    callbacks' side, us p50/p99.9/worst: row store %lld/%lld/%lld (%zu), "
	       "slot close+open %lld/%lld/%lld (%zu), DATA store+registry_add %lld/%lld/%lld (%zu)\n",
	       (long long)latency_pct(&publish, 0.5), (long long)latency_pct(&publish, 0.999),
	       (long long)publish.worst_us, publish.calls,
	       (long long)latency_pct(&open_close, 0.5), (long long)latency_pct(&open_close, 0.999),
	       (long long)open_close.worst_us, open_close.calls,
	       (long long)latency_pct(&add, 0.5), (long long)latency_pct(&add, 0.999),
	       (long long)add.worst_us, add.calls);
	free(e);
	free(refs);
	free(lateness);
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
	rc |= run_listed(n, false);
	rc |= run_listed(n, true);
	rc |= run_listed(n * 10 < LISTED_OPEN ? n * 10 : LISTED_OPEN / 2, false);
	rc |= run_listed(n * 10 < LISTED_OPEN ? n * 10 : LISTED_OPEN / 2, true);
	printf("bench-watchdog: %s\n", rc ? "TARGET MISSED" : "targets met");
	return rc;
}
