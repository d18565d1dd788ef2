/*
 * NAME
 *	reload - SIGUSR1: read the configuration file again, swap it in
 * SYNOPSIS
 *	reload_start(&r, &source, &registry);	after SIGUSR1 is blocked everywhere
 *	reload_now(&source, &registry);		one reload (the thread, tests)
 *	reload_stop(&r);
 * DESCRIPTION
 *	libmilter's own signal thread takes SIGHUP, SIGTERM and SIGINT (all
 *	three stop the filter), so a reload needs another signal: a thread of
 *	its own waits for SIGUSR1 with sigwait, which main blocks in every
 *	thread before any starts. A reload parses the file into a new snapshot
 *	(cfgstore.h) and publishes it: transactions in flight keep theirs,
 *	the next MAIL takes the new one. A file with errors changes nothing:
 *	each error is logged as file:line: message. Keys bound at start-up
 *	(socket, user, pidfile, listeners) keep their running values; each
 *	one the file changed is logged. The -u, -p, -P and -v flags still win
 *	over the file. Tells systemd (RELOADING=1, then READY=1) when it runs
 *	under it.
 */
#ifndef SMTPTRACE_RELOAD_H
#define SMTPTRACE_RELOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "registry.h"

struct reload_source {
	const char *path;
	bool        must_exist;	/* named with -c */
	bool        verbose;	/* -v */
};

struct reload {
	pthread_t                   thread;
	bool                        running;
	atomic_bool                 stopping;
	const struct reload_source *source;
	struct registry            *reg;
};

/* 0 when the new configuration is in; -1 when the running one was kept. */
int reload_now(const struct reload_source *source, struct registry *reg);
int reload_start(struct reload *r, const struct reload_source *source,
		 struct registry *reg);
void reload_stop(struct reload *r);

#endif
