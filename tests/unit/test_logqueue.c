/*
 * logqueue.c: a sink that does not take lines (a log socket nobody reads)
 * never holds the thread that logs; lines queue, the overflow is dropped
 * and counted, and once the sink takes lines again every queued one is
 * written, then a line saying how many were dropped.
 */
#include <pthread.h>
#include <syslog.h>

#include "logqueue.h"
#include "tests.h"

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static int written, warnings;
static char last_warning[256];

/* Blocks while the test holds the gate, as syslog(3) does on a full socket. */
static void
stuck_sink(int priority, const char *line)
{
	pthread_mutex_lock(&gate);
	pthread_mutex_unlock(&gate);
	pthread_mutex_lock(&seen_lock);
	if (priority == LOG_WARNING) {
		warnings++;
		snprintf(last_warning, sizeof last_warning, "%s", line);
	} else {
		written++;
	}
	pthread_mutex_unlock(&seen_lock);
}

static void
test_stuck_sink(void)
{
	enum { LINES = 5000 };
	char line[200];
	int pushed = 0;

	pthread_mutex_lock(&gate);
	CU_ASSERT_EQUAL_FATAL(logqueue_start(stuck_sink, 64 * 1024), 0);
	CU_ASSERT_TRUE(logqueue_running());
	/* all of these return at once although the sink takes nothing */
	for (int i = 0; i < LINES; i++) {
		snprintf(line, sizeof line, "kind=txn n=%d %0100d", i, 0);
		pushed += logqueue_push(LOG_INFO, line);
	}
	unsigned long dropped = logqueue_dropped();
	EXPECT_INT(pushed + (int)dropped, LINES);
	CU_ASSERT(dropped > 0 && pushed > 100);		/* 64 KiB: about 500 lines */
	pthread_mutex_unlock(&gate);
	logqueue_stop(5000);
	CU_ASSERT_FALSE(logqueue_running());
	EXPECT_INT(written, pushed);
	EXPECT_INT(warnings, 1);
	char want[64];
	snprintf(want, sizeof want, "observing less: %lu log lines dropped", dropped);
	EXPECT_CONTAINS(last_warning, want);
}

int
suite_logqueue(void)
{
	CU_pSuite s = CU_add_suite("log queue", NULL, NULL);
	return s == NULL ||
	       !CU_add_test(s, "a log sink that takes nothing holds no caller", test_stuck_sink);
}
