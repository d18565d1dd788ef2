/*
 * NAME
 *	smtptrace-milter - observe every phase of each SMTP transaction
 * SYNOPSIS
 *	smtptrace-milter [-fnvV] [-c file] [-p socket] [-u user[:group]] [-P pidfile]
 * DESCRIPTION
 *	Start-up: flags, configuration, socket, privileges, then libmilter's
 *	main loop until SIGTERM or SIGHUP (libmilter's own signal thread).
 *	The only place that exits on error; that happens before the first
 *	connection is served. See smtptrace-milter(8).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "callbacks.h"
#include "config.h"
#include "escape.h"
#include "log.h"
#include "mta.h"
#include "version.h"

struct options {
	const char *config_file;
	bool        config_given;
	const char *socket;
	const char *user;
	const char *pidfile;
	bool        foreground;
	bool        check_only;
	bool        verbose;
};

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: smtptrace-milter [-fnvVh] [-c file] [-p socket] [-u user[:group]] [-P pidfile]\n"
		"  -c file    configuration file (default " CONFIG_DEFAULT_FILE ")\n"
		"  -p socket  milter socket: unix:/path, inet:port@host, inet6:port@host\n"
		"  -f         stay in the foreground and log to standard error too\n"
		"  -n         check the configuration and exit\n"
		"  -u user[:group]  run as this user after opening the socket\n"
		"  -P file    write the process id to this file\n"
		"  -v         log every event (debug)\n"
		"  -V         print the version and exit\n"
		"  -h         this help\n");
}

static void
parse_args(int argc, char **argv, struct options *o)
{
	int c;

	memset(o, 0, sizeof *o);
	o->config_file = CONFIG_DEFAULT_FILE;
	while ((c = getopt(argc, argv, "c:p:fnu:P:vVh")) != -1) {
		switch (c) {
		case 'c': o->config_file = optarg; o->config_given = true; break;
		case 'p': o->socket = optarg; break;
		case 'f': o->foreground = true; break;
		case 'n': o->check_only = true; break;
		case 'u': o->user = optarg; break;
		case 'P': o->pidfile = optarg; break;
		case 'v': o->verbose = true; break;
		case 'V':
			printf("smtptrace-milter %s\n", SMTPTRACE_VERSION);
			exit(0);
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "smtptrace-milter: unexpected argument: %s\n", argv[optind]);
		usage(stderr);
		exit(2);
	}
}

/* "user" or "user:group" to ids; 0 or -1 with a message on stderr. */
static int
lookup_user(const char *spec, uid_t *uid, gid_t *gid, char *name, size_t size)
{
	char buf[256];
	const char *group = NULL;

	text_copy(buf, sizeof buf, spec);
	char *colon = strchr(buf, ':');
	if (colon != NULL) {
		*colon = '\0';
		group = colon + 1;
	}
	struct passwd *pw = getpwnam(buf);
	if (pw == NULL) {
		fprintf(stderr, "smtptrace-milter: no such user: %s\n", buf);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	text_copy(name, size, buf);
	if (group != NULL && *group != '\0') {
		struct group *gr = getgrnam(group);
		if (gr == NULL) {
			fprintf(stderr, "smtptrace-milter: no such group: %s\n", group);
			return -1;
		}
		*gid = gr->gr_gid;
	}
	return 0;
}

static int
drop_privileges(const char *name, uid_t uid, gid_t gid)
{
	if (getuid() == uid && geteuid() == uid)
		return 0;
	if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
		log_msg(LOG_ERR, "cannot become user %s: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

static const char *
unix_path(const char *sock)
{
	if (strncmp(sock, "unix:", 5) == 0)
		return sock + 5;
	if (strncmp(sock, "local:", 6) == 0)
		return sock + 6;
	return sock[0] == '/' ? sock : NULL;
}

static int
write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
		log_msg(LOG_ERR, "cannot write pid file %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
daemonize(void)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	if (chdir("/") != 0)
		return -1;
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

static int
load_config(const struct options *o, struct config *cfg)
{
	struct config_errors errs = { 0 };

	config_defaults(cfg);
	if (config_load(o->config_file, o->config_given, cfg, &errs) < 0) {
		for (int i = 0; i < errs.count; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		return -1;
	}
	if (o->socket != NULL)
		text_copy(cfg->socket, sizeof cfg->socket, o->socket);
	if (o->user != NULL)
		text_copy(cfg->user, sizeof cfg->user, o->user);
	if (o->pidfile != NULL)
		text_copy(cfg->pidfile, sizeof cfg->pidfile, o->pidfile);
	if (o->verbose)
		cfg->log_verbose = true;
	config_resolve(cfg);
	return 0;
}

/* Open the socket and make it reachable for the MTA. */
static int
open_socket(const struct config *cfg, bool have_user, uid_t uid, gid_t gid)
{
	const char *path = unix_path(cfg->socket);

	if (mta_setconn(cfg->socket) != 0) {
		fprintf(stderr, "smtptrace-milter: bad socket: %s\n", cfg->socket);
		return -1;
	}
	mode_t old = umask((mode_t)cfg->socket_umask);
	int rc = smfi_opensocket(true);
	umask(old);
	if (rc != MI_SUCCESS) {
		fprintf(stderr, "smtptrace-milter: cannot open socket %s\n", cfg->socket);
		return -1;
	}
	if (path != NULL && have_user && chown(path, uid, gid) != 0) {
		fprintf(stderr, "smtptrace-milter: cannot chown %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct config cfg;	/* the snapshot every callback reads */
	struct options o;
	struct smfiDesc desc;
	uid_t uid = 0;
	gid_t gid = 0;
	char user[256] = "";

	parse_args(argc, argv, &o);
	if (load_config(&o, &cfg) < 0)
		return 1;
	bool have_user = cfg.user[0] != '\0';
	if (have_user && lookup_user(cfg.user, &uid, &gid, user, sizeof user) < 0)
		return 1;
	if (o.check_only) {
		printf("configuration OK\n");
		return 0;
	}

	log_open(cfg.log_ident, cfg.log_facility, o.foreground, cfg.log_verbose);
	callbacks_init(&cfg);
	callbacks_fill(&desc);
	if (smfi_register(desc) != MI_SUCCESS) {
		fprintf(stderr, "smtptrace-milter: smfi_register failed\n");
		return 1;
	}
	smfi_settimeout(cfg.milter_timeout);
	if (open_socket(&cfg, have_user, uid, gid) < 0)
		return 1;
	if (!o.foreground && daemonize() < 0) {
		fprintf(stderr, "smtptrace-milter: cannot detach: %s\n", strerror(errno));
		return 1;
	}
	if (cfg.pidfile[0] != '\0' && write_pidfile(cfg.pidfile) < 0)
		return 1;
	if (have_user && drop_privileges(user, uid, gid) < 0)
		return 1;

	log_msg(LOG_INFO, "starting smtptrace-milter %s on %s (header %s, log format %s)",
		SMTPTRACE_VERSION, cfg.socket,
		cfg.header_enable ? cfg.header_name : "off",
		cfg.log_format == LOG_FORMAT_JSON ? "json" : "kv");
	int rc = smfi_main();

	const char *path = unix_path(cfg.socket);
	if (path != NULL && unlink(path) != 0 && errno != ENOENT)
		log_msg(LOG_WARNING, "cannot remove socket %s: %s", path, strerror(errno));
	if (cfg.pidfile[0] != '\0')
		unlink(cfg.pidfile);
	log_msg(LOG_INFO, "stopped");
	log_close();
	return rc == MI_SUCCESS ? 0 : 1;
}
