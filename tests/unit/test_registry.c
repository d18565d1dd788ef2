/*
 * registry.c and watchdog.c: deadlines with a fake clock, the heap under
 * many entries, and (for make tsan) the real watchdog thread against
 * threads adding and removing entries.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "registry.h"
#include "tests.h"
#include "watchdog.h"

static void
entry_init(struct stall_entry *e, const char *session)
{
	memset(e, 0, sizeof *e);
	snprintf(e->view.session, sizeof e->view.session, "%s", session);
}

static void
test_first_warning_and_repeats(void)
{
	struct registry reg;
	struct stall_entry a;
	struct stall_view out[4];

	CU_ASSERT_FATAL(registry_init(&reg, 30000, 60000) == 0);
	entry_init(&a, "000000000000000a");
	CU_ASSERT(registry_add(&reg, &a, 1000) == 0);
	EXPECT_INT(registry_next_deadline(&reg), 31000);
	EXPECT_INT(registry_due(&reg, 30999, out, 4), 0);	/* not a ms early */
	EXPECT_INT(registry_due(&reg, 31000, out, 4), 1);
	EXPECT_INT(out[0].warnings, 1);
	EXPECT_INT(out[0].in_data_ms, 30000);
	EXPECT_STR(out[0].session, "000000000000000a");
	size_t in_data, stalled;
	registry_counts(&reg, &in_data, &stalled, NULL);
	EXPECT_INT(in_data, 1);
	EXPECT_INT(stalled, 1);
	EXPECT_INT(registry_next_deadline(&reg), 91000);
	EXPECT_INT(registry_due(&reg, 91000, out, 4), 1);
	EXPECT_INT(out[0].warnings, 2);
	/* a late watchdog does not fire twice for one period */
	EXPECT_INT(registry_due(&reg, 200000, out, 4), 1);
	EXPECT_INT(out[0].warnings, 3);
	EXPECT_INT(registry_next_deadline(&reg), 211000);	/* keeps its period */
	EXPECT_INT(registry_remove(&reg, &a), 3);
	registry_counts(&reg, &in_data, &stalled, NULL);
	EXPECT_INT(in_data, 0);
	EXPECT_INT(stalled, 0);
	EXPECT_INT(registry_next_deadline(&reg), -1);
	EXPECT_INT(registry_remove(&reg, &a), 3);		/* twice: a no-op */
	registry_destroy(&reg);
}

static void
test_warn_once(void)
{
	struct registry reg;
	struct stall_entry a;
	struct stall_view out[2];

	CU_ASSERT_FATAL(registry_init(&reg, 5000, 0) == 0);
	entry_init(&a, "a");
	registry_add(&reg, &a, 0);
	EXPECT_INT(registry_due(&reg, 5000, out, 2), 1);
	EXPECT_INT(registry_next_deadline(&reg), -1);	/* no repeat */
	EXPECT_INT(registry_due(&reg, 100000, out, 2), 0);
	size_t in_data, stalled;
	registry_counts(&reg, &in_data, &stalled, NULL);
	EXPECT_INT(stalled, 1);				/* still stalled */
	EXPECT_INT(registry_remove(&reg, &a), 1);
	registry_destroy(&reg);
}

/* Each warning's count lands in the row of its session's slot (live.h). */
static void
test_warnings_in_the_live_row(void)
{
	struct registry reg;
	struct stall_entry a, b;
	struct stall_view out[2];
	struct live_row row, rows[2];
	struct live_counts c;

	CU_ASSERT_FATAL(registry_init(&reg, 1000, 1000) == 0);
	memset(&row, 0, sizeof row);
	row.phase = LIVE_DATA;
	entry_init(&a, "a");
	entry_init(&b, "b");		/* no slot: warned all the same */
	a.live_ref = live_open(&reg.live);
	CU_ASSERT_FATAL(a.live_ref != 0);
	live_publish(&reg.live, a.live_ref, &row);
	registry_add(&reg, &a, 0);
	registry_add(&reg, &b, 0);
	EXPECT_INT(live_snapshot(&reg.live, LIVE_ALL_PHASES, rows, 2, &c), 1);
	EXPECT_INT(rows[0].warnings, 0);
	EXPECT_INT(registry_due(&reg, 1000, out, 2), 2);
	EXPECT_INT(live_snapshot(&reg.live, LIVE_ALL_PHASES, rows, 2, &c), 1);
	EXPECT_INT(rows[0].warnings, 1);
	EXPECT_INT(c.stalled, 1);
	EXPECT_INT(registry_due(&reg, 2000, out, 2), 2);
	live_snapshot(&reg.live, LIVE_ALL_PHASES, rows, 2, &c);
	EXPECT_INT(rows[0].warnings, 2);
	EXPECT_INT(registry_remove(&reg, &a), 2);
	EXPECT_INT(registry_remove(&reg, &b), 2);
	live_close(&reg.live, a.live_ref);
	registry_destroy(&reg);
}

/* Removed before its deadline: never reported. */
static void
test_removed_in_time(void)
{
	struct registry reg;
	struct stall_entry a, b;
	struct stall_view out[2];

	registry_init(&reg, 1000, 1000);
	entry_init(&a, "a");
	entry_init(&b, "b");
	registry_add(&reg, &a, 0);
	registry_add(&reg, &b, 10);
	EXPECT_INT(registry_remove(&reg, &a), 0);
	EXPECT_INT(registry_due(&reg, 1005, out, 2), 0);
	EXPECT_INT(registry_due(&reg, 1010, out, 2), 1);
	EXPECT_STR(out[0].session, "b");
	registry_remove(&reg, &b);
	registry_destroy(&reg);
}

/* 1000 entries with shuffled start times, some removed: due in deadline order. */
static void
test_heap_order(void)
{
	enum { N = 1000 };
	static struct stall_entry e[N];
	static struct stall_view out[N];
	struct registry reg;
	unsigned seed = 1;

	registry_init(&reg, 100, 0);
	for (int i = 0; i < N; i++) {
		char id[17];
		snprintf(id, sizeof id, "%016d", i);
		entry_init(&e[i], id);
		seed = seed * 1103515245 + 12345;
		registry_add(&reg, &e[i], (int64_t)(seed % 100000));
	}
	for (int i = 0; i < N; i += 3)
		registry_remove(&reg, &e[i]);
	size_t n = registry_due(&reg, 1000000, out, N);
	EXPECT_INT(n, N - (N + 2) / 3);
	int64_t last = -1;
	bool ordered = true;
	for (size_t i = 0; i < n; i++) {
		if (out[i].data_at < last)
			ordered = false;
		last = out[i].data_at;
	}
	CU_ASSERT_TRUE(ordered);
	for (int i = 0; i < N; i++)
		registry_remove(&reg, &e[i]);
	size_t in_data, stalled;
	registry_counts(&reg, &in_data, &stalled, NULL);
	EXPECT_INT(in_data, 0);
	EXPECT_INT(stalled, 0);
	registry_destroy(&reg);
}

/* ---- the real watchdog thread (run under make tsan) --------------------- */

#define WORKERS 4
#define PER_WORKER 200

static atomic_uint reports;
static atomic_uint first_reports;

static void
count_report(const struct stall_view *v, const void *arg)
{
	(void)arg;
	atomic_fetch_add(&reports, 1);
	if (v->warnings == 1)
		atomic_fetch_add(&first_reports, 1);
}

struct worker {
	struct registry *reg;
	struct stall_entry entries[PER_WORKER];
	int id;
};

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* Half the entries leave at once (never stall), half stay past the deadline. */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < PER_WORKER; i++) {
		snprintf(w->entries[i].view.session, sizeof w->entries[i].view.session,
			 "%08u%08u", (unsigned)w->id % 100000000u, (unsigned)i % 100000000u);
		registry_add(w->reg, &w->entries[i], registry_clock_ms());
		if (i % 2 == 0)
			registry_remove(w->reg, &w->entries[i]);
	}
	sleep_ms(400);
	for (int i = 1; i < PER_WORKER; i += 2)
		registry_remove(w->reg, &w->entries[i]);
	return NULL;
}

static void *
reader_main(void *arg)
{
	size_t in_data, stalled;
	unsigned long total;
	int64_t warn, repeat;

	for (int i = 0; i < 50; i++) {
		registry_counts(arg, &in_data, &stalled, &total);
		registry_timing(arg, &warn, &repeat);
		registry_next_deadline(arg);
		sleep_ms(5);
	}
	return NULL;
}

static void
test_watchdog_threads(void)
{
	static struct worker workers[WORKERS];
	pthread_t threads[WORKERS], reader;
	struct registry reg;
	struct watchdog wd;

	atomic_store(&reports, 0);
	atomic_store(&first_reports, 0);
	CU_ASSERT_FATAL(registry_init(&reg, 150, 100) == 0);
	CU_ASSERT_FATAL(watchdog_start(&wd, &reg, count_report, NULL) == 0);
	for (int i = 0; i < WORKERS; i++) {
		workers[i].reg = &reg;
		workers[i].id = i;
		pthread_create(&threads[i], NULL, worker_main, &workers[i]);
	}
	pthread_create(&reader, NULL, reader_main, &reg);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(threads[i], NULL);
	pthread_join(reader, NULL);
	watchdog_stop(&wd);
	/* every entry that stayed 400 ms was reported once at 150 ms (and
	 * again at 250, 350 ms); none that left at once */
	EXPECT_INT(atomic_load(&first_reports), WORKERS * PER_WORKER / 2);
	size_t in_data, stalled;
	registry_counts(&reg, &in_data, &stalled, NULL);
	EXPECT_INT(in_data, 0);
	EXPECT_INT(stalled, 0);
	registry_destroy(&reg);
}

/*
 * The watchdog already sleeps towards a far deadline (A repeats in 10 s)
 * when B arrives due in 50 ms: B's add must wake it.
 */
static void
test_new_earliest_wakes_watchdog(void)
{
	struct registry reg;
	struct watchdog wd;
	struct stall_entry a, b;

	atomic_store(&reports, 0);
	atomic_store(&first_reports, 0);
	CU_ASSERT_FATAL(registry_init(&reg, 50, 10000) == 0);
	CU_ASSERT_FATAL(watchdog_start(&wd, &reg, count_report, NULL) == 0);
	entry_init(&a, "a");
	entry_init(&b, "b");
	registry_add(&reg, &a, registry_clock_ms());
	for (int i = 0; i < 200 && atomic_load(&first_reports) < 1; i++)
		sleep_ms(5);
	EXPECT_INT(atomic_load(&first_reports), 1);
	sleep_ms(20);				/* now waiting for A's repeat, 10 s away */
	int64_t added = registry_clock_ms();
	registry_add(&reg, &b, added);
	while (atomic_load(&first_reports) < 2 && registry_clock_ms() - added < 2000)
		sleep_ms(2);
	int64_t took = registry_clock_ms() - added;
	if (took > 1000)
		fprintf(stderr, "\nB reported after %lld ms\n", (long long)took);
	EXPECT_INT(atomic_load(&first_reports), 2);
	CU_ASSERT(took < 1000);			/* 50 ms due; far below A's 10 s */
	watchdog_stop(&wd);
	registry_remove(&reg, &a);
	registry_remove(&reg, &b);
	registry_destroy(&reg);
}

int
suite_registry(void)
{
	CU_pSuite s = CU_add_suite("stall registry and watchdog", NULL, NULL);
	return s == NULL ||
	       !CU_add_test(s, "first warning and repeats", test_first_warning_and_repeats) ||
	       !CU_add_test(s, "warn once", test_warn_once) ||
	       !CU_add_test(s, "warnings shown in the session's live row", test_warnings_in_the_live_row) ||
	       !CU_add_test(s, "removed in time: never reported", test_removed_in_time) ||
	       !CU_add_test(s, "1000 entries come due in order", test_heap_order) ||
	       !CU_add_test(s, "watchdog thread against 4 writers and a reader", test_watchdog_threads) ||
	       !CU_add_test(s, "a new earliest deadline wakes the watchdog", test_new_earliest_wakes_watchdog);
}
