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
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "callbacks.h"
#include "config.h"
#include "daemon.h"
#include "escape.h"
#include "httpd.h"
#include "live.h"
#include "log.h"
#include "metrics.h"
#include "mta.h"
#include "notify.h"
#include "reload.h"
#include "registry.h"
#include "textfile.h"
#include "version.h"
#include "watchdog.h"

/* The threads beside libmilter's, and what they share. */
struct services {
	struct registry registry;
	struct watchdog watchdog;
	struct httpd    httpd;
	struct textfile textfile;
	struct reload   reload;
	struct reload_source source;
};

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

/* The file, then the flags over it, through the same checks; every error on stderr. */
static int
load_config(const struct options *o, struct config *cfg)
{
	struct config_errors errs = { 0 };

	config_defaults(cfg);
	config_load(o->config_file, o->config_given, cfg, &errs);
	if (o->socket != NULL)
		config_set_flag(cfg, "socket", o->socket, "-p", &errs);
	if (o->user != NULL)
		config_set_flag(cfg, "user", o->user, "-u", &errs);
	if (o->pidfile != NULL)
		config_set_flag(cfg, "pidfile", o->pidfile, "-P", &errs);
	for (int i = 0; i < errs.count; i++)
		fprintf(stderr, "%s\n", errs.msg[i]);
	if (errs.count > 0)
		return -1;
	if (o->verbose)
		cfg->log_verbose = true;
	config_resolve(cfg);
	return 0;
}

/* Open the socket and make it reachable for the MTA. */
static int
open_socket(const struct config *cfg, const struct daemon_user *who)
{
	const char *path = config_unix_path(cfg->socket);
	char err[300];

	if (path != NULL && daemon_socket_check(path, err, sizeof err) < 0) {
		fprintf(stderr, "smtptrace-milter: %s\n", err);
		return -1;
	}
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
	if (path != NULL)
		daemon_socket_created(path);
	if (path != NULL && who != NULL && daemon_chown(path, who, err, sizeof err) < 0) {
		fprintf(stderr, "smtptrace-milter: %s\n", err);
		return -1;
	}
	return 0;
}

/* Everything between the configuration and the main loop. */
static int
start(const struct options *o, const struct config *cfg,
      const struct daemon_user *who, struct services *sv)
{
	char err[300];
	struct smfiDesc desc;

	/* the pid file's lock first: a second instance stops here, before
	 * it touches the running one's socket */
	if (cfg->pidfile[0] != '\0' &&
	    daemon_lock_pidfile(cfg->pidfile, err, sizeof err) < 0) {
		fprintf(stderr, "smtptrace-milter: %s\n", err);
		return -1;
	}
	callbacks_init(cfg, &sv->registry);
	callbacks_fill(&desc);
	if (smfi_register(desc) != MI_SUCCESS) {
		fprintf(stderr, "smtptrace-milter: smfi_register failed\n");
		return -1;
	}
	smfi_settimeout(cfg->milter_timeout);
	if (open_socket(cfg, who) < 0)
		return -1;
	if (!o->foreground && daemon_detach(err, sizeof err) < 0)
		goto failed;
	if (daemon_write_pid(err, sizeof err) < 0)
		goto failed;
	if (who != NULL && daemon_drop_privileges(who, err, sizeof err) < 0)
		goto failed;
	return 0;
failed:
	fprintf(stderr, "smtptrace-milter: %s\n", err);
	log_msg(LOG_ERR, "%s", err);
	return -1;
}

/*
 * The threads beside libmilter's. First block the signals libmilter's own
 * signal thread waits for: a thread started before smfi_main would
 * otherwise take SIGTERM and die with the default action.
 */
static int
start_services(const struct config *cfg, struct services *sv)
{
	sigset_t set;
	char err[300];

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (log_start_writer() != 0)
		log_msg(LOG_WARNING, "no log writer thread: lines are written by the callbacks");
	if (watchdog_start(&sv->watchdog, &sv->registry, watchdog_report,
			   cfg) != 0) {
		fprintf(stderr, "smtptrace-milter: cannot start the stall watchdog\n");
		return -1;
	}
	if (cfg->metrics_http_listen[0] != '\0' &&
	    httpd_start(&sv->httpd, cfg->metrics_http_listen, &sv->registry, err,
			sizeof err) != 0) {
		fprintf(stderr, "smtptrace-milter: metrics.http_listen: %s\n", err);
		log_msg(LOG_ERR, "metrics.http_listen: %s", err);
		return -1;
	}
	if (cfg->metrics_textfile[0] != '\0' &&
	    textfile_start(&sv->textfile, cfg->metrics_textfile,
			   cfg->metrics_textfile_interval, &sv->registry) != 0) {
		fprintf(stderr, "smtptrace-milter: cannot start the metrics file writer\n");
		return -1;
	}
	if (reload_start(&sv->reload, &sv->source, &sv->registry) != 0) {
		fprintf(stderr, "smtptrace-milter: cannot start the reload thread\n");
		return -1;
	}
	return 0;
}

static void
stop_services(struct services *sv)
{
	reload_stop(&sv->reload);
	textfile_stop(&sv->textfile);
	httpd_stop(&sv->httpd);
	watchdog_stop(&sv->watchdog);
}

/*
 * After a stop, libmilter's workers go on serving the sessions they have
 * until the MTA closes them (Postfix does at the end of each SMTP
 * session): wait a while for their lines, then say how many were cut.
 */
#define DRAIN_MS 10000

static void
drain_sessions(int max_ms)
{
	unsigned long open = metrics_connections_open();

	for (int waited = 0; open > 0 && waited < max_ms; waited += 50) {
		struct timespec ts = { .tv_nsec = 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		open = metrics_connections_open();
	}
	if (open > 0)
		log_msg(LOG_WARNING, "stopping with %lu SMTP sessions still open after "
			"%d s: their open transactions are not logged", open, max_ms / 1000);
}

/*
 * Each MTA connection takes a descriptor, and libmilter 8.17 retries a
 * failed accept() at once, silently: say at start how many connections
 * fit, and let the callbacks say when they are all taken.
 */
static void
check_fd_room(const struct config *cfg)
{
	long limit;
	/* a few for the log, the metrics file and a scraper or two */
	long reserve = cfg->metrics_http_listen[0] != '\0' ? 16 : 8;
	long room = daemon_fd_room(reserve, &limit);

	if (limit < 0)
		return;
	callbacks_set_connection_room(room > 0 ? room : 1);
	if (room < 100)
		log_msg(LOG_WARNING, "the open-files limit (%ld file descriptors) leaves room "
			"for %ld MTA connections at once; raise it (LimitNOFILE=, ulimit -n)",
			limit, room > 0 ? room : 0);
}

/* Remove the socket and the pid file, only if they are still this process's. */
static void
clean_up(const struct config *cfg)
{
	const char *path = config_unix_path(cfg->socket);

	if (path != NULL)
		daemon_socket_remove(path);
	if (cfg->pidfile[0] != '\0')
		daemon_remove_pidfile(cfg->pidfile);
}

int
main(int argc, char **argv)
{
	static struct config cfg;	/* the snapshot every callback reads */
	static struct services sv;
	struct daemon_user user;
	struct options o;
	char err[300];

	parse_args(argc, argv, &o);
	if (load_config(&o, &cfg) < 0)
		return 1;
	bool have_user = cfg.user[0] != '\0';
	if (have_user && daemon_lookup_user(cfg.user, &user, err, sizeof err) < 0) {
		/* name where the user came from: the flag, or the file */
		fprintf(stderr, "%s: %s\n", o.user != NULL ? "-u" : o.config_file, err);
		return 1;
	}
	if (o.check_only) {
		printf("configuration OK\n");
		return 0;
	}
	sv.source = (struct reload_source){
		.path = o.config_file, .must_exist = o.config_given, .verbose = o.verbose,
	};

	log_open(cfg.log_ident, cfg.log_facility, o.foreground, cfg.log_verbose);
	if (registry_init(&sv.registry, (int64_t)cfg.stall_warn_after * 1000,
			  (int64_t)cfg.stall_repeat_every * 1000) != 0) {
		fprintf(stderr, "smtptrace-milter: cannot set up the stall registry\n");
		return 1;
	}
	if (live_recent_alloc(&sv.registry.live, (size_t)cfg.metrics_recent) != 0) {
		fprintf(stderr, "smtptrace-milter: metrics.recent: no memory for %d entries\n",
			cfg.metrics_recent);
		return 1;
	}
	if (start(&o, &cfg, have_user ? &user : NULL, &sv) < 0 ||
	    start_services(&cfg, &sv) < 0) {
		stop_services(&sv);
		clean_up(&cfg);
		log_stop_writer();
		daemon_ready(1);
		return 1;
	}
	log_msg(LOG_INFO, "starting smtptrace-milter %s on %s (header %s, log format %s, "
		"stall warning after %d s, metrics %s%s%s)",
		SMTPTRACE_VERSION, cfg.socket,
		cfg.header_enable ? cfg.header_name : "off",
		cfg.log_format == LOG_FORMAT_JSON ? "json" : "kv", cfg.stall_warn_after,
		cfg.metrics_http_listen[0] ? cfg.metrics_http_listen : "",
		cfg.metrics_http_listen[0] && cfg.metrics_textfile[0] ? " and " : "",
		cfg.metrics_textfile[0] ? cfg.metrics_textfile :
		(cfg.metrics_http_listen[0] ? "" : "off"));
	daemon_ready(0);
	check_fd_room(&cfg);
	char status[400];
	snprintf(status, sizeof status, "observing on %.200s; SIGUSR1 reloads %.150s",
		 cfg.socket, o.config_file);
	notify_ready(status);
	int rc = smfi_main();
	notify_stopping();
	drain_sessions(DRAIN_MS);
	/* the registry stays (never destroyed) and the log open until the
	 * process ends: a worker may still be in a callback */
	stop_services(&sv);
	clean_up(&cfg);
	log_msg(LOG_INFO, "stopped");
	log_stop_writer();
	return rc == MI_SUCCESS ? 0 : 1;
}
