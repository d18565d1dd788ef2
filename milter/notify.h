/*
 * NAME
 *	notify - tell systemd how the daemon is doing (sd_notify)
 * SYNOPSIS
 *	notify_ready("..."); notify_reloading(); notify_stopping();
 * DESCRIPTION
 *	For a Type=notify unit: READY=1 once the socket is open, privileges
 *	are dropped and the threads run; RELOADING=1 and READY=1 around a
 *	reload; STOPPING=1 at shutdown; STATUS= a one-line summary. Uses
 *	libsystemd's sd_notify (it handles the socket address forms and
 *	credentials; a well-kept Debian library rather than a datagram written
 *	by hand). Without NOTIFY_SOCKET in the environment nothing happens.
 *	Any thread.
 */
#ifndef SMTPTRACE_NOTIFY_H
#define SMTPTRACE_NOTIFY_H

void notify_ready(const char *status);
void notify_reloading(void);
void notify_stopping(void);

#endif
