/*
 * NAME
 *	registry - the transactions now in DATA, and when each one stalls
 * DESCRIPTION
 *	See registry.h. Which threads: the libmilter workers (add, remove),
 *	the watchdog (wait_due), the HTTP and text-file threads (snapshot,
 *	counts). Functions named *_locked expect the mutex held.
 */
#include "registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t
registry_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
registry_init(struct registry *reg, int64_t warn_after_ms, int64_t repeat_ms)
{
	pthread_condattr_t attr;

	memset(reg, 0, sizeof *reg);
	reg->warn_after_ms = warn_after_ms;
	reg->repeat_ms = repeat_ms;
	if (live_init(&reg->live) != 0)
		return -1;
	if (pthread_mutex_init(&reg->lock, NULL) != 0) {
		live_destroy(&reg->live);
		return -1;
	}
	if (pthread_condattr_init(&attr) != 0 ||
	    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&reg->changed, &attr) != 0) {
		pthread_mutex_destroy(&reg->lock);
		live_destroy(&reg->live);
		return -1;
	}
	pthread_condattr_destroy(&attr);
	return 0;
}

void
registry_set_timing(struct registry *reg, int64_t warn_after_ms, int64_t repeat_ms)
{
	pthread_mutex_lock(&reg->lock);
	reg->warn_after_ms = warn_after_ms;
	reg->repeat_ms = repeat_ms;
	pthread_mutex_unlock(&reg->lock);
}

void
registry_destroy(struct registry *reg)
{
	free(reg->heap);
	reg->heap = NULL;
	pthread_cond_destroy(&reg->changed);
	pthread_mutex_destroy(&reg->lock);
	live_destroy(&reg->live);
}

/* ---- the heap of next warnings ---------------------------------------- */

static void
heap_set(struct registry *reg, size_t i, struct stall_entry *e)
{
	reg->heap[i] = e;
	e->heap_index = i;
}

static void
heap_up(struct registry *reg, size_t i)
{
	struct stall_entry *e = reg->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (reg->heap[parent]->next_warn_at <= e->next_warn_at)
			break;
		heap_set(reg, i, reg->heap[parent]);
		i = parent;
	}
	heap_set(reg, i, e);
}

static void
heap_down(struct registry *reg, size_t i)
{
	struct stall_entry *e = reg->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= reg->heap_len)
			break;
		if (child + 1 < reg->heap_len &&
		    reg->heap[child + 1]->next_warn_at < reg->heap[child]->next_warn_at)
			child++;
		if (e->next_warn_at <= reg->heap[child]->next_warn_at)
			break;
		heap_set(reg, i, reg->heap[child]);
		i = child;
	}
	heap_set(reg, i, e);
}

static int
heap_push_locked(struct registry *reg, struct stall_entry *e)
{
	if (reg->heap_len == reg->heap_cap) {
		size_t cap = reg->heap_cap ? reg->heap_cap * 2 : 64;
		struct stall_entry **grown = realloc(reg->heap, cap * sizeof *grown);
		if (grown == NULL)
			return -1;
		reg->heap = grown;
		reg->heap_cap = cap;
	}
	heap_set(reg, reg->heap_len++, e);
	heap_up(reg, e->heap_index);
	return 0;
}

static void
heap_delete_locked(struct registry *reg, struct stall_entry *e)
{
	size_t i = e->heap_index;

	if (i == REGISTRY_NOT_IN_HEAP)
		return;
	e->heap_index = REGISTRY_NOT_IN_HEAP;
	struct stall_entry *last = reg->heap[--reg->heap_len];
	if (i == reg->heap_len)
		return;
	heap_set(reg, i, last);
	heap_down(reg, i);
	heap_up(reg, last->heap_index);
}

/* ---- entries ------------------------------------------------------------ */

int
registry_add(struct registry *reg, struct stall_entry *e, int64_t now_ms)
{
	int rc;

	pthread_mutex_lock(&reg->lock);
	if (e->registered) {		/* a second DATA event: keep the first */
		pthread_mutex_unlock(&reg->lock);
		return 0;
	}
	e->view.data_at = now_ms;
	e->view.warnings = 0;
	e->next_warn_at = now_ms + reg->warn_after_ms;
	e->heap_index = REGISTRY_NOT_IN_HEAP;
	e->prev = NULL;
	rc = heap_push_locked(reg, e);
	if (rc == 0) {
		e->registered = true;
		/* newest at the head: the list stays ordered by time of DATA */
		e->next = reg->head;
		if (reg->head != NULL)
			reg->head->prev = e;
		else
			reg->tail = e;
		reg->head = e;
		reg->count++;
		if (e->heap_index == 0)	/* the new earliest deadline */
			pthread_cond_signal(&reg->changed);
	}
	pthread_mutex_unlock(&reg->lock);
	return rc;
}

unsigned
registry_remove(struct registry *reg, struct stall_entry *e)
{
	unsigned warnings;

	pthread_mutex_lock(&reg->lock);
	warnings = e->view.warnings;
	if (e->registered) {
		heap_delete_locked(reg, e);
		if (e->prev != NULL)
			e->prev->next = e->next;
		else
			reg->head = e->next;
		if (e->next != NULL)
			e->next->prev = e->prev;
		else
			reg->tail = e->prev;
		e->prev = e->next = NULL;
		e->registered = false;
		reg->count--;
		if (warnings > 0)
			reg->stalled--;
	}
	pthread_mutex_unlock(&reg->lock);
	return warnings;
}

static size_t
due_locked(struct registry *reg, int64_t now_ms, struct stall_view *out,
	   size_t max)
{
	size_t n = 0;

	while (n < max && reg->heap_len > 0 && reg->heap[0]->next_warn_at <= now_ms) {
		struct stall_entry *e = reg->heap[0];
		if (e->view.warnings++ == 0) {
			reg->stalled++;
			reg->stalls_total++;
		}
		live_set_warnings(&reg->live, e->live_ref, e->view.warnings);
		e->view.in_data_ms = now_ms - e->view.data_at;
		out[n++] = e->view;
		if (reg->repeat_ms > 0) {
			/* the next one a whole period later, even if this one was late */
			e->next_warn_at += reg->repeat_ms;
			if (e->next_warn_at <= now_ms)
				e->next_warn_at = now_ms + reg->repeat_ms;
			heap_down(reg, 0);
		} else {
			heap_delete_locked(reg, e);
		}
	}
	return n;
}

size_t
registry_due(struct registry *reg, int64_t now_ms, struct stall_view *out,
	     size_t max)
{
	pthread_mutex_lock(&reg->lock);
	size_t n = due_locked(reg, now_ms, out, max);
	pthread_mutex_unlock(&reg->lock);
	return n;
}

int64_t
registry_next_deadline(struct registry *reg)
{
	pthread_mutex_lock(&reg->lock);
	int64_t next = reg->heap_len > 0 ? reg->heap[0]->next_warn_at : -1;
	pthread_mutex_unlock(&reg->lock);
	return next;
}

size_t
registry_wait_due(struct registry *reg, struct stall_view *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&reg->lock);
	while (!reg->stopping) {
		int64_t now = registry_clock_ms();
		if (reg->heap_len > 0 && reg->heap[0]->next_warn_at <= now) {
			n = due_locked(reg, now, out, max);
			break;
		}
		if (reg->heap_len == 0) {
			pthread_cond_wait(&reg->changed, &reg->lock);
			continue;
		}
		int64_t at = reg->heap[0]->next_warn_at;
		struct timespec ts = {
			.tv_sec = (time_t)(at / 1000),
			.tv_nsec = (long)(at % 1000) * 1000000,
		};
		/* ETIMEDOUT or a wakeup: look again. (POSIX names no other
		 * error for valid arguments; never leave the loop on one.) */
		(void)pthread_cond_timedwait(&reg->changed, &reg->lock, &ts);
	}
	pthread_mutex_unlock(&reg->lock);
	return n;
}

void
registry_stop(struct registry *reg)
{
	pthread_mutex_lock(&reg->lock);
	reg->stopping = true;
	pthread_cond_broadcast(&reg->changed);
	pthread_mutex_unlock(&reg->lock);
}

void
registry_timing(struct registry *reg, int64_t *warn_after_ms, int64_t *repeat_ms)
{
	pthread_mutex_lock(&reg->lock);
	*warn_after_ms = reg->warn_after_ms;
	*repeat_ms = reg->repeat_ms;
	pthread_mutex_unlock(&reg->lock);
}

void
registry_counts(struct registry *reg, size_t *in_data, size_t *stalled,
		unsigned long *stalls_total)
{
	pthread_mutex_lock(&reg->lock);
	*in_data = reg->count;
	*stalled = reg->stalled;
	if (stalls_total != NULL)
		*stalls_total = reg->stalls_total;
	pthread_mutex_unlock(&reg->lock);
}
