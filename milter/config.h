/*
 * NAME
 *	config - the configuration file, parsed into an immutable snapshot
 * SYNOPSIS
 *	struct config cfg; struct config_errors errs;
 *	config_defaults(&cfg);
 *	if (config_load(path, must_exist, &cfg, &errs) < 0) ... errs.msg[i] ...
 * DESCRIPTION
 *	Reads a libconfig file. Every key is declared once in a table (name,
 *	type, default, range); unknown keys, wrong types and values out of
 *	range are errors naming the file and line. All errors are collected,
 *	not only the first. After start-up the snapshot is only read.
 */
#ifndef SMTPTRACE_CONFIG_H
#define SMTPTRACE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_DEFAULT_FILE	"/etc/smtptrace/smtptrace.conf"
#define CONFIG_ERRORS_MAX	32
#define CONFIG_STR_MAX		256

enum log_format { LOG_FORMAT_KV, LOG_FORMAT_JSON };

struct config {
	char socket[CONFIG_STR_MAX];
	int  socket_umask;
	char user[CONFIG_STR_MAX];
	char pidfile[CONFIG_STR_MAX];
	int  milter_timeout;		/* seconds, smfi_settimeout */

	int  log_facility;		/* syslog LOG_* facility value */
	char log_ident[64];
	int  log_format;		/* enum log_format */
	bool log_verbose;

	bool header_enable;
	char header_name[64];
	char header_authserv_id[CONFIG_STR_MAX];	/* "" until resolved */
	bool header_skip_authenticated;
	bool header_explain;		/* plain-words fields in the header too */

	int  mta_data_timeout;		/* seconds */
	int  mta_timeout_tolerance;	/* seconds */

	int  stall_warn_after;		/* seconds */
	int  stall_repeat_every;	/* seconds; 0: once */

	char metrics_textfile[CONFIG_STR_MAX];	/* "" = off */
	int  metrics_textfile_interval;	/* seconds */
	char metrics_http_listen[64];	/* "host:port", "[v6]:port"; "" = off */
	int  metrics_recent;		/* transactions kept for /recent; 0 = off */
};

struct config_errors {
	int  count;
	char msg[CONFIG_ERRORS_MAX][320];	/* "file:line: message" */
};

void config_defaults(struct config *cfg);
/*
 * Load path over the values in cfg. A missing file is an error when
 * must_exist, else the defaults stay. Returns 0, or -1 with errs filled.
 */
int config_load(const char *path, bool must_exist, struct config *cfg,
		struct config_errors *errs);
/*
 * A string key's value from the command line (-p, -u, -P), through the same
 * checks as in the file; errors name the flag. 0, or -1 with errs filled.
 */
int config_set_flag(struct config *cfg, const char *key, const char *value,
		    const char *flag, struct config_errors *errs);
/* The file of a unix: or local: socket spec; NULL for inet sockets. */
const char *config_unix_path(const char *socket_spec);
/* A socket spec libmilter takes (absolute unix path); 0, or -1 and msg. */
int config_check_socket(const char *spec, char *msg, size_t size);
/*
 * "127.0.0.1:9754" or "[::1]:9754" (numeric only: no DNS at start-up)
 * to an address; ss may be NULL to only check. 0, or -1 and msg.
 */
struct sockaddr_storage;
int config_parse_listen(const char *spec, struct sockaddr_storage *ss,
			char *msg, size_t size);
/*
 * A reload: the keys that need a restart (socket, user, pidfile, listeners,
 * ...) keep the running values in next; each one the file changed is
 * reported (key, running value, value in the file). Returns how many.
 */
typedef void (*config_report_fn)(void *arg, const char *key,
				 const char *running, const char *in_file);
int config_keep_restart_keys(const struct config *running, struct config *next,
			     config_report_fn report, void *arg);
/* Fill values that depend on the machine (authserv-id: the host name). */
void config_resolve(struct config *cfg);
/* The keys the file may hold, "group.key" (for checks and documentation). */
size_t config_key_count(void);
const char *config_key_name(size_t i);

#endif
