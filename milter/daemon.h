/*
 * NAME
 *	daemon - start-up chores of a Unix daemon: user, pid file, detaching
 * SYNOPSIS
 *	daemon_lookup_user("smtptrace:smtptrace", &who, err, sizeof err);
 *	daemon_detach(); ... daemon_ready(0);
 * DESCRIPTION
 *	Used by main.c only, before the first connection is served. Files
 *	root writes on behalf of the service user are opened without
 *	following symbolic links. daemon_detach forks; the parent waits until
 *	the child says it is ready (or failed) and exits with that status, so
 *	an init script sees a start-up failure. Functions return 0 or -1 and
 *	fill err with a message.
 */
#ifndef SMTPTRACE_DAEMON_H
#define SMTPTRACE_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct daemon_user {
	char  name[64];
	uid_t uid;
	gid_t gid;
};

int daemon_lookup_user(const char *spec, struct daemon_user *who, char *err,
		       size_t errsize);
int daemon_drop_privileges(const struct daemon_user *who, char *err,
			   size_t errsize);
/* Give a file root made (the socket) to the service user. */
int daemon_chown(const char *path, const struct daemon_user *who, char *err,
		 size_t errsize);

/*
 * The pid file: opened and locked (flock, held until exit) before anything
 * else is touched, so a second instance stops there; the pid is written
 * once the process has its final pid. It stays root's (mode 0644).
 */
int daemon_lock_pidfile(const char *path, char *err, size_t errsize);
int daemon_write_pid(char *err, size_t errsize);
/* Remove the pid file, if this process locked it. */
void daemon_remove_pidfile(const char *path);

/*
 * A unix socket path, before libmilter replaces what is there: a file that
 * is not a socket, or a socket a live process answers on, is refused.
 */
int daemon_socket_check(const char *path, char *err, size_t errsize);
/* Remember the socket just made, so that only it is ever removed. */
void daemon_socket_created(const char *path);
/* Remove the socket, if it is still the one this process made. */
void daemon_socket_remove(const char *path);
/*
 * Raise the soft limit of open files to the hard one, and say how many
 * MTA connections fit in it beside the descriptors open now and reserve
 * more (the metrics listener's connections). limit: the limit in force.
 */
long daemon_fd_room(long reserve, long *limit);
/* Fork into the background; returns in the child only. */
int daemon_detach(char *err, size_t errsize);
/* Tell the waiting parent (if any) how start-up ended: 0 ready, else failed. */
void daemon_ready(int status);

#endif
