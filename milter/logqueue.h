/*
 * NAME
 *	logqueue - finished log lines handed to a writer thread of their own
 * SYNOPSIS
 *	logqueue_start(write_fn, bytes);	once, signals blocked
 *	if (!logqueue_push(priority, line)) ... dropped: the queue is full
 *	logqueue_stop(max_ms);
 * DESCRIPTION
 *	syslog(3) blocks when the log socket's reader stops reading (its queue
 *	of datagrams fills up), and so would every callback that logs: mail
 *	would wait for the MTA's milter timeouts. So the callbacks only copy
 *	their lines into a fixed ring of bytes and a writer thread calls the
 *	sink. When the ring is full a line is dropped, never waited for, and
 *	counted; the writer says how many were dropped once it can write
 *	again. Any thread may push; one writer.
 */
#ifndef SMTPTRACE_LOGQUEUE_H
#define SMTPTRACE_LOGQUEUE_H

#include <stdbool.h>
#include <stddef.h>

typedef void (*logqueue_write_fn)(int priority, const char *line);

/* 0, or -1 when the ring or the thread could not be had (then: no queue). */
int logqueue_start(logqueue_write_fn write, size_t bytes);
bool logqueue_running(void);
/* Copy a line in; false when it was dropped (the ring is full). */
bool logqueue_push(int priority, const char *line);
/* Lines dropped so far. */
unsigned long logqueue_dropped(void);
/* Write out what is queued, for at most max_ms, then stop the writer. */
void logqueue_stop(int max_ms);

#endif
