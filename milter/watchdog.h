/*
 * NAME
 *	watchdog - the thread that reports stalled uploads while they last
 * SYNOPSIS
 *	watchdog_start(&w, &registry, watchdog_report, &cfg);
 *	watchdog_stop(&w);
 * DESCRIPTION
 *	One thread: sleeps until the registry's earliest deadline, then hands
 *	each due transaction (a copy) to the report function, outside the
 *	registry's lock. It never calls libmilter. watchdog_report writes the
 *	kind=stall log line and counts the stall once; tests pass their own.
 *	Start it after the process has detached and blocked the signals
 *	libmilter's signal thread waits for.
 */
#ifndef SMTPTRACE_WATCHDOG_H
#define SMTPTRACE_WATCHDOG_H

#include <pthread.h>
#include <stdbool.h>

#include "registry.h"

typedef void (*watchdog_fn)(const struct stall_view *v, const void *arg);

struct watchdog {
	pthread_t        thread;
	bool             running;
	struct registry *reg;
	watchdog_fn      report;
	const void      *arg;
};

int  watchdog_start(struct watchdog *w, struct registry *reg, watchdog_fn report,
		    const void *arg);
void watchdog_stop(struct watchdog *w);

/* The production report, in the running configuration's log format (arg unused). */
void watchdog_report(const struct stall_view *v, const void *arg);

#endif
