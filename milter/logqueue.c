/*
 * NAME
 *	logqueue - finished log lines handed to a writer thread of their own
 * DESCRIPTION
 *	See logqueue.h. The ring holds records of a 4-byte header (priority
 *	in the top byte, length below) and the line's bytes, wrapping at the
 *	end of the buffer; one mutex and one condition variable guard it, held
 *	only to copy a line in or out.
 */
#include "logqueue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#define LINE_MAX_BYTES	16384

static struct {
	pthread_mutex_t   lock;
	pthread_cond_t    wake;		/* a line came, or stopping */
	pthread_cond_t    drained;	/* the ring is empty */
	char             *buf;
	size_t            cap, head, used;	/* head: the oldest byte */
	bool              stopping;
	atomic_bool       running;
	atomic_ulong      dropped;
	pthread_t         thread;
	logqueue_write_fn write;
} q = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
	.drained = PTHREAD_COND_INITIALIZER,
};

static void
ring_put(const void *src, size_t n)
{
	size_t at = (q.head + q.used) % q.cap;
	size_t first = n < q.cap - at ? n : q.cap - at;

	memcpy(q.buf + at, src, first);
	memcpy(q.buf, (const char *)src + first, n - first);
	q.used += n;
}

static void
ring_get(void *dst, size_t n)
{
	size_t first = n < q.cap - q.head ? n : q.cap - q.head;

	memcpy(dst, q.buf + q.head, first);
	memcpy((char *)dst + first, q.buf, n - first);
	q.head = (q.head + n) % q.cap;
	q.used -= n;
}

bool
logqueue_push(int priority, const char *line)
{
	size_t len = strnlen(line, LINE_MAX_BYTES - 1);
	uint32_t header = (uint32_t)(priority & 0xff) << 24 | (uint32_t)len;
	bool ok = false;

	pthread_mutex_lock(&q.lock);
	if (!q.stopping && q.cap - q.used >= sizeof header + len) {
		ring_put(&header, sizeof header);
		ring_put(line, len);
		pthread_cond_signal(&q.wake);
		ok = true;
	}
	pthread_mutex_unlock(&q.lock);
	if (!ok)
		atomic_fetch_add(&q.dropped, 1);
	return ok;
}

/* The oldest line, out of the ring (lock held); false when it is empty. */
static bool
pop_locked(int *priority, char *line)
{
	uint32_t header;

	if (q.used == 0)
		return false;
	ring_get(&header, sizeof header);
	size_t len = header & 0xffffff;
	ring_get(line, len);
	line[len] = '\0';
	*priority = (int)(header >> 24);
	return true;
}

static void
report_drops(unsigned long *reported)
{
	unsigned long now = atomic_load(&q.dropped);
	char text[200];

	if (now == *reported)
		return;
	snprintf(text, sizeof text, "observing less: %lu log lines dropped: the log "
		 "socket did not take them fast enough (mail was not held)",
		 now - *reported);
	q.write(LOG_WARNING, text);
	*reported = now;
}

static void *
writer(void *arg)
{
	static char line[LINE_MAX_BYTES];
	unsigned long reported = 0;
	int priority;

	(void)arg;
	pthread_mutex_lock(&q.lock);
	for (;;) {
		if (!pop_locked(&priority, line)) {
			pthread_cond_broadcast(&q.drained);
			if (q.stopping)
				break;
			pthread_cond_wait(&q.wake, &q.lock);
			continue;
		}
		pthread_mutex_unlock(&q.lock);
		q.write(priority, line);
		report_drops(&reported);
		pthread_mutex_lock(&q.lock);
	}
	pthread_mutex_unlock(&q.lock);
	report_drops(&reported);
	return NULL;
}

int
logqueue_start(logqueue_write_fn write, size_t bytes)
{
	if (atomic_load(&q.running))
		return 0;
	q.buf = malloc(bytes);
	if (q.buf == NULL)
		return -1;
	q.cap = bytes;
	q.head = q.used = 0;
	q.stopping = false;
	q.write = write;
	if (pthread_create(&q.thread, NULL, writer, NULL) != 0) {
		free(q.buf);
		q.buf = NULL;
		return -1;
	}
	atomic_store(&q.running, true);
	return 0;
}

bool
logqueue_running(void)
{
	return atomic_load(&q.running);
}

unsigned long
logqueue_dropped(void)
{
	return atomic_load(&q.dropped);
}

void
logqueue_stop(int max_ms)
{
	struct timespec until;

	if (!atomic_load(&q.running))
		return;
	atomic_store(&q.running, false);	/* lines from now on go straight out */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += max_ms / 1000;
	until.tv_nsec += (long)(max_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&q.lock);
	q.stopping = true;
	pthread_cond_signal(&q.wake);
	int rc = 0;
	while (q.used > 0 && rc == 0)
		rc = pthread_cond_timedwait(&q.drained, &q.lock, &until);
	bool drained = q.used == 0;
	pthread_mutex_unlock(&q.lock);
	/* a writer stuck in the sink is left behind: the process is ending */
	if (drained)
		pthread_join(q.thread, NULL);
	else
		pthread_detach(q.thread);
}
