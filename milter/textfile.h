/*
 * NAME
 *	textfile - the metrics as a file, for node_exporter's textfile collector
 * SYNOPSIS
 *	textfile_start(&t, "/var/lib/prometheus/node-exporter/smtptrace.prom", 15, &reg);
 *	textfile_stop(&t);			writes once more, then stops
 * DESCRIPTION
 *	A thread rewrites the file every interval seconds: it writes a
 *	temporary file in the same directory, then renames it over the old
 *	one, so a reader never sees half a file. A failed write is logged
 *	once per kind of failure and retried at the next interval.
 */
#ifndef SMTPTRACE_TEXTFILE_H
#define SMTPTRACE_TEXTFILE_H

#include <pthread.h>
#include <stdbool.h>

#include "registry.h"

struct textfile {
	pthread_t        thread;
	pthread_mutex_t  lock;
	pthread_cond_t   wake;
	bool             running, stopping;
	const char      *path;
	int              interval_s;
	struct registry *reg;
	int              last_errno;	/* the failure logged last; 0 none */
};

int  textfile_start(struct textfile *t, const char *path, int interval_s,
		    struct registry *reg);
void textfile_stop(struct textfile *t);
/* One write now: 0, or -1 with errno. */
int  textfile_write(const char *path, struct registry *reg);

#endif
