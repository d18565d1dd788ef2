/*
 * NAME
 *	cfgstore - the running configuration, as immutable snapshots
 * SYNOPSIS
 *	cfgstore_init(&cfg);			once, before any thread starts
 *	const struct config *c = cfgstore_acquire();	... cfgstore_release(c);
 *	cfgstore_publish(&next);		a reload
 * DESCRIPTION
 *	A snapshot is never changed once published: a reload makes a new
 *	one and swaps it in. Each user takes a reference (a session for one
 *	transaction, the watchdog for one warning) and gives it back; the
 *	store frees a replaced snapshot when its last reference goes, so a
 *	transaction in flight keeps the configuration it started with. The
 *	one mutex is held only to take a reference or to swap, never while a
 *	caller uses the configuration. Any thread.
 */
#ifndef SMTPTRACE_CFGSTORE_H
#define SMTPTRACE_CFGSTORE_H

#include "config.h"

/* 0, or -1 when out of memory. */
int cfgstore_init(const struct config *initial);
/* The current snapshot, with a reference; never NULL after cfgstore_init. */
const struct config *cfgstore_acquire(void);
/* Give a reference back; NULL is a no-op. */
void cfgstore_release(const struct config *cfg);
/* Make a copy of next the current snapshot. 0, or -1 when out of memory. */
int cfgstore_publish(const struct config *next);
/* Snapshots alive now (for tests: 1 when nobody holds an old one). */
unsigned cfgstore_alive(void);

#endif
