/*
 * NAME
 *	cfgstore - the running configuration, as immutable snapshots
 * DESCRIPTION
 *	See cfgstore.h. The store holds one reference to the current
 *	snapshot; users hold one each. The config is the snapshot's first
 *	member, so a config pointer leads back to its snapshot.
 */
#include "cfgstore.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

struct snapshot {
	struct config cfg;	/* first: (struct snapshot *)cfg */
	unsigned      refs;	/* guarded by lock */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct snapshot *current;
static unsigned alive;

static struct snapshot *
snapshot_new(const struct config *cfg)
{
	struct snapshot *s = malloc(sizeof *s);

	if (s == NULL)
		return NULL;
	s->cfg = *cfg;
	s->refs = 1;		/* the store's */
	return s;
}

/* With the lock held: drop one reference; the snapshot to free, or NULL. */
static struct snapshot *
unref_locked(struct snapshot *s)
{
	if (--s->refs > 0)
		return NULL;
	alive--;
	return s;
}

int
cfgstore_init(const struct config *initial)
{
	return cfgstore_publish(initial);
}

const struct config *
cfgstore_acquire(void)
{
	pthread_mutex_lock(&lock);
	struct snapshot *s = current;
	if (s != NULL)
		s->refs++;
	pthread_mutex_unlock(&lock);
	return s != NULL ? &s->cfg : NULL;
}

void
cfgstore_release(const struct config *cfg)
{
	if (cfg == NULL)
		return;
	struct snapshot *s = (struct snapshot *)(void *)(uintptr_t)cfg;
	pthread_mutex_lock(&lock);
	struct snapshot *dead = unref_locked(s);
	pthread_mutex_unlock(&lock);
	free(dead);
}

int
cfgstore_publish(const struct config *next)
{
	struct snapshot *s = snapshot_new(next);

	if (s == NULL)
		return -1;
	pthread_mutex_lock(&lock);
	struct snapshot *old = current;
	current = s;
	alive++;
	struct snapshot *dead = old != NULL ? unref_locked(old) : NULL;
	pthread_mutex_unlock(&lock);
	free(dead);
	return 0;
}

unsigned
cfgstore_alive(void)
{
	pthread_mutex_lock(&lock);
	unsigned n = alive;
	pthread_mutex_unlock(&lock);
	return n;
}
