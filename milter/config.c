/*
 * NAME
 *	config - the configuration file, parsed into an immutable snapshot
 * DESCRIPTION
 *	See config.h. The table below is the one list of keys; conf/
 *	smtptrace.conf documents each and tests/unit/test_config.c checks
 *	that file parses to the defaults.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "escape.h"

/* KEY_OCTAL: a string of octal digits ("007"): libconfig reads 007 as decimal. */
enum key_type { KEY_STRING, KEY_INT, KEY_BOOL, KEY_CHOICE, KEY_OCTAL };

struct choice {
	const char *name;
	int         value;
};

struct key_spec {
	const char          *path;
	enum key_type        type;
	size_t               offset;
	size_t               size;	/* KEY_STRING: buffer size */
	long                 min, max;	/* KEY_INT, KEY_OCTAL */
	const struct choice *choices;	/* KEY_CHOICE, ends with name NULL */
};

static const struct choice facilities[] = {
	{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	{ NULL, 0 },
};

static const struct choice formats[] = {
	{ "kv", LOG_FORMAT_KV }, { "json", LOG_FORMAT_JSON }, { NULL, 0 },
};

#define STR(p, m)  p, KEY_STRING, offsetof(struct config, m), \
	sizeof(((struct config *)0)->m), 0, 0, NULL
#define INT(p, m, lo, hi) p, KEY_INT, offsetof(struct config, m), 0, lo, hi, NULL
#define OCTAL(p, m, lo, hi) p, KEY_OCTAL, offsetof(struct config, m), 0, lo, hi, NULL
#define BOOL(p, m) p, KEY_BOOL, offsetof(struct config, m), 0, 0, 0, NULL
#define CHOICE(p, m, c) p, KEY_CHOICE, offsetof(struct config, m), 0, 0, 0, c

static const struct key_spec keys[] = {
	{ STR("socket", socket) },
	{ OCTAL("socket_umask", socket_umask, 0, 0777) },
	{ STR("user", user) },
	{ STR("pidfile", pidfile) },
	{ INT("milter_timeout", milter_timeout, 10, 86400) },
	{ CHOICE("log.facility", log_facility, facilities) },
	{ STR("log.ident", log_ident) },
	{ CHOICE("log.format", log_format, formats) },
	{ BOOL("log.verbose", log_verbose) },
	{ BOOL("header.enable", header_enable) },
	{ STR("header.name", header_name) },
	{ STR("header.authserv_id", header_authserv_id) },
	{ BOOL("header.skip_authenticated", header_skip_authenticated) },
	{ BOOL("header.explain", header_explain) },
	{ INT("mta.data_timeout", mta_data_timeout, 1, 86400) },
	{ INT("mta.timeout_tolerance", mta_timeout_tolerance, 0, 3600) },
	{ INT("stall.warn_after", stall_warn_after, 1, 86400) },
	{ INT("stall.repeat_every", stall_repeat_every, 0, 86400) },
	{ STR("metrics.textfile", metrics_textfile) },
	{ INT("metrics.textfile_interval", metrics_textfile_interval, 1, 3600) },
	{ STR("metrics.http_listen", metrics_http_listen) },
	{ INT("metrics.recent", metrics_recent, 0, 100000) },
};

static const char *const groups[] = { "log", "header", "mta", "stall", "metrics" };

/* Keys a reload cannot change: what was opened or bound at start-up. */
static const char *const restart_keys[] = {
	"socket", "socket_umask", "user", "pidfile", "milter_timeout",
	"log.facility", "log.ident", "metrics.textfile",
	"metrics.textfile_interval", "metrics.http_listen", "metrics.recent",
};

void
config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	text_copy(cfg->socket, sizeof cfg->socket, "inet:8895@127.0.0.1");
	cfg->socket_umask = 007;
	cfg->milter_timeout = 7210;
	cfg->log_facility = LOG_MAIL;
	text_copy(cfg->log_ident, sizeof cfg->log_ident, "smtptrace");
	cfg->log_format = LOG_FORMAT_KV;
	cfg->header_enable = true;
	text_copy(cfg->header_name, sizeof cfg->header_name, "X-SMTP-Trace");
	cfg->mta_data_timeout = 300;
	cfg->mta_timeout_tolerance = 2;
	cfg->stall_warn_after = 30;
	cfg->stall_repeat_every = 60;
	cfg->metrics_textfile_interval = 15;
	cfg->metrics_recent = 1000;
}

static void
add_error(struct config_errors *errs, const char *file, int line,
	  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
add_error(struct config_errors *errs, const char *file, int line,
	  const char *fmt, ...)
{
	char text[256];
	va_list ap;

	if (errs->count >= CONFIG_ERRORS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	char *msg = errs->msg[errs->count++];
	if (line > 0)
		snprintf(msg, sizeof errs->msg[0], "%s:%d: %s", file, line, text);
	else
		snprintf(msg, sizeof errs->msg[0], "%s: %s", file, text);
}

static const struct key_spec *
find_key(const char *path)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strcmp(keys[i].path, path) == 0)
			return &keys[i];
	return NULL;
}

static bool
is_group(const char *name)
{
	for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
		if (strcmp(groups[i], name) == 0)
			return true;
	return false;
}

static const char *
type_word(enum key_type type)
{
	switch (type) {
	case KEY_STRING: return "a string";
	case KEY_INT: return "an integer";
	case KEY_BOOL: return "true or false";
	case KEY_CHOICE: return "a string";
	case KEY_OCTAL: return "a string of octal digits, e.g. \"007\"";
	}
	return "?";
}

static void
list_choices(const struct choice *c, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (; c->name != NULL && len < size; c++) {
		int n = snprintf(buf + len, size - len, "%s%s",
				 len ? ", " : "", c->name);
		if (n < 0)
			break;
		len += (size_t)n;
	}
}

/*
 * Each parse_* converts a setting already known to be of the right type,
 * stores it at dst, or returns the message of what is wrong with it.
 */
typedef const char *(*parse_fn)(const struct key_spec *k,
				const config_setting_t *st, void *dst,
				char *msg, size_t size);

static const char *
check_absolute(const char *v, char *msg, size_t size)
{
	if (v[0] == '\0' || v[0] == '/')
		return NULL;
	snprintf(msg, size, "\"%.100s\" must be an absolute path", v);
	return msg;
}

static const char *
check_header_name(const char *v, char *msg, size_t size)
{
	if (v[0] == '\0') {
		snprintf(msg, size, "must not be empty");
		return msg;
	}
	for (const char *p = v; *p; p++) {
		if (*p <= ' ' || *p > '~' || *p == ':') {
			snprintf(msg, size, "\"%.64s\" is not a header field name", v);
			return msg;
		}
	}
	return NULL;
}

static const char *
check_authserv_id(const char *v, char *msg, size_t size)
{
	for (const char *p = v; *p; p++) {
		if (*p <= ' ' || *p > '~' || *p == ';') {
			snprintf(msg, size, "must be printable ASCII without spaces or ';'");
			return msg;
		}
	}
	return NULL;
}

/* What a string key's value must be beyond its length: one check for the
 * file and the command line alike. */
static const char *
check_string(const struct key_spec *k, const char *v, char *msg, size_t size)
{
	if (strcmp(k->path, "socket") == 0)
		return config_check_socket(v, msg, size) < 0 ? msg : NULL;
	if (strcmp(k->path, "pidfile") == 0 || strcmp(k->path, "metrics.textfile") == 0)
		return check_absolute(v, msg, size);
	if (strcmp(k->path, "metrics.http_listen") == 0)
		return v[0] != '\0' && config_parse_listen(v, NULL, msg, size) < 0 ? msg : NULL;
	if (strcmp(k->path, "header.name") == 0)
		return check_header_name(v, msg, size);
	if (strcmp(k->path, "header.authserv_id") == 0)
		return check_authserv_id(v, msg, size);
	return NULL;
}

static const char *
store_string(const struct key_spec *k, const char *v, void *dst, char *msg,
	     size_t size)
{
	size_t len = strlen(v);

	if (len >= k->size) {
		snprintf(msg, size, "longer than %zu bytes", k->size - 1);
		return msg;
	}
	if (check_string(k, v, msg, size) != NULL)
		return msg;
	memcpy(dst, v, len + 1);
	return NULL;
}

static const char *
parse_string(const struct key_spec *k, const config_setting_t *st, void *dst,
	     char *msg, size_t size)
{
	return store_string(k, config_setting_get_string(st), dst, msg, size);
}

static const char *
parse_int(const struct key_spec *k, const config_setting_t *st, void *dst,
	  char *msg, size_t size)
{
	long long v = config_setting_get_int64(st);

	if (v < k->min || v > k->max) {
		snprintf(msg, size, "%lld is out of range (%ld to %ld)", v, k->min, k->max);
		return msg;
	}
	*(int *)dst = (int)v;
	return NULL;
}

static const char *
parse_octal(const struct key_spec *k, const config_setting_t *st, void *dst,
	    char *msg, size_t size)
{
	const char *v = config_setting_get_string(st);
	char *end;

	errno = 0;
	long n = strtol(v, &end, 8);
	/* digits only: strtol would also take spaces and a sign */
	if (*v == '\0' || strspn(v, "01234567") != strlen(v) || *end != '\0' ||
	    errno != 0 || n < k->min || n > k->max) {
		snprintf(msg, size, "\"%.20s\" is not an octal number from %lo to %lo",
			 v, k->min, k->max);
		return msg;
	}
	*(int *)dst = (int)n;
	return NULL;
}

static const char *
parse_bool(const struct key_spec *k, const config_setting_t *st, void *dst,
	   char *msg, size_t size)
{
	(void)k;
	(void)msg;
	(void)size;
	*(bool *)dst = config_setting_get_bool(st) != 0;
	return NULL;
}

static const char *
parse_choice(const struct key_spec *k, const config_setting_t *st, void *dst,
	     char *msg, size_t size)
{
	const char *v = config_setting_get_string(st);
	char names[200];

	for (const struct choice *c = k->choices; c->name; c++) {
		if (strcmp(c->name, v) == 0) {
			*(int *)dst = c->value;
			return NULL;
		}
	}
	list_choices(k->choices, names, sizeof names);
	snprintf(msg, size, "\"%.60s\" is not one of: %s", v, names);
	return msg;
}

/* Store one setting's value; report type and range errors. */
static void
set_value(const struct key_spec *k, const config_setting_t *st,
	  struct config *cfg, const char *file, struct config_errors *errs)
{
	static const struct { int libconfig_type; parse_fn parse; } by_key[] = {
		[KEY_STRING] = { CONFIG_TYPE_STRING, parse_string },
		[KEY_INT] = { CONFIG_TYPE_INT, parse_int },
		[KEY_BOOL] = { CONFIG_TYPE_BOOL, parse_bool },
		[KEY_CHOICE] = { CONFIG_TYPE_STRING, parse_choice },
		[KEY_OCTAL] = { CONFIG_TYPE_STRING, parse_octal },
	};
	int line = (int)config_setting_source_line(st);
	int type = config_setting_type(st);
	char msg[200];

	if (type == CONFIG_TYPE_INT64)
		type = CONFIG_TYPE_INT;
	if (type != by_key[k->type].libconfig_type) {
		add_error(errs, file, line, "%s: expected %s", k->path,
			  type_word(k->type));
		return;
	}
	const char *bad = by_key[k->type].parse(k, st, (char *)cfg + k->offset,
						msg, sizeof msg);
	if (bad != NULL)
		add_error(errs, file, line, "%s: %s", k->path, bad);
}

static void
walk(const config_setting_t *group, const char *prefix, struct config *cfg,
     const char *file, struct config_errors *errs)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		const config_setting_t *st = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(st);
		int line = (int)config_setting_source_line(st);
		char path[128];

		snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "",
			 name ? name : "?");
		if (config_setting_type(st) == CONFIG_TYPE_GROUP) {
			if (*prefix == '\0' && name && is_group(name))
				walk(st, name, cfg, file, errs);
			else
				add_error(errs, file, line, "unknown section '%s'", path);
			continue;
		}
		const struct key_spec *k = find_key(path);
		if (k == NULL) {
			add_error(errs, file, line, "unknown key '%s'", path);
			continue;
		}
		set_value(k, st, cfg, file, errs);
	}
}

static int
line_of(const config_t *lc, const char *path)
{
	const config_setting_t *st = config_lookup(lc, path);

	return st ? (int)config_setting_source_line(st) : 0;
}

/* Checks that span more than one key. */
static void
validate(const struct config *cfg, const config_t *lc, const char *file,
	 struct config_errors *errs)
{
	/* a cross-key error names the line of whichever key the file has */
	int timeout_line = line_of(lc, "mta.data_timeout");
	int tolerance_line = line_of(lc, "mta.timeout_tolerance");
	int warn_line = line_of(lc, "stall.warn_after");

	if (cfg->mta_timeout_tolerance >= cfg->mta_data_timeout)
		add_error(errs, file, tolerance_line ? tolerance_line : timeout_line,
			  "mta.timeout_tolerance: %d must be less than mta.data_timeout (%d)",
			  cfg->mta_timeout_tolerance, cfg->mta_data_timeout);
	if (cfg->stall_warn_after >= cfg->mta_data_timeout)
		add_error(errs, file, warn_line ? warn_line : timeout_line,
			  "stall.warn_after: %d must be less than mta.data_timeout (%d): "
			  "the MTA ends a stalled upload at its data timeout, so no "
			  "warning could ever come", cfg->stall_warn_after,
			  cfg->mta_data_timeout);
}

int
config_set_flag(struct config *cfg, const char *key, const char *value,
		const char *flag, struct config_errors *errs)
{
	const struct key_spec *k = find_key(key);
	char msg[200];

	if (k == NULL || k->type != KEY_STRING) {
		add_error(errs, flag, 0, "no string key %s", key);
		return -1;
	}
	if (store_string(k, value, (char *)cfg + k->offset, msg, sizeof msg) != NULL) {
		add_error(errs, flag, 0, "%s", msg);
		return -1;
	}
	return 0;
}

int
config_parse_listen(const char *spec, struct sockaddr_storage *ss, char *msg,
		    size_t size)
{
	char host[64];
	const char *colon;
	struct sockaddr_storage tmp;

	if (ss == NULL)
		ss = &tmp;
	memset(ss, 0, sizeof *ss);
	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');
		if (end == NULL || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof host)
			goto bad;
		memcpy(host, spec + 1, (size_t)(end - spec - 1));
		host[end - spec - 1] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL || (size_t)(colon - spec) >= sizeof host)
			goto bad;
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
	}
	char *end;
	long port = strtol(colon + 1, &end, 10);
	/* digits only: strtol would also take blanks and a sign */
	if (!isdigit((unsigned char)colon[1]) || *end != '\0' || port < 1 || port > 65535)
		goto bad;
	struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		return 0;
	}
bad:
	snprintf(msg, size, "\"%.60s\" is not address:port (127.0.0.1:9754, [::1]:9754)",
		 spec);
	return -1;
}

const char *
config_unix_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	return spec[0] == '/' ? spec : NULL;
}

int
config_check_socket(const char *spec, char *msg, size_t size)
{
	const char *path = config_unix_path(spec);

	if (path != NULL) {
		if (path[0] == '/')
			return 0;
		snprintf(msg, size, "\"%.100s\": a unix socket needs an absolute path", spec);
		return -1;
	}
	const char *at = strchr(spec, '@');
	if ((strncmp(spec, "inet:", 5) == 0 || strncmp(spec, "inet6:", 6) == 0) &&
	    isdigit((unsigned char)spec[spec[4] == ':' ? 5 : 6])) {
		char *end;
		long port = strtol(spec + (spec[4] == ':' ? 5 : 6), &end, 10);
		/* "inet:port" listens on every address; "inet:port@" names none */
		if (port > 0 && port < 65536 &&
		    (*end == '\0' || (end == at && at[1] != '\0')))
			return 0;
	}
	snprintf(msg, size, "\"%.100s\" is not unix:/path, inet:port@host or inet6:port@host",
		 spec);
	return -1;
}

int
config_load(const char *path, bool must_exist, struct config *cfg,
	    struct config_errors *errs)
{
	config_t lc;
	int before = errs->count;

	struct stat st;

	int found = stat(path, &st);
	if (found != 0 && errno == ENOENT && !must_exist)
		return 0;
	if (found == 0 && S_ISDIR(st.st_mode)) {
		add_error(errs, path, 0, "is a directory, not a configuration file");
		return -1;
	}
	config_init(&lc);
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			add_error(errs, path, 0, "cannot read: %s", strerror(errno));
		else
			add_error(errs, config_error_file(&lc) ? config_error_file(&lc) : path,
				  config_error_line(&lc), "%s", config_error_text(&lc));
		config_destroy(&lc);
		return -1;
	}
	walk(config_root_setting(&lc), "", cfg, path, errs);
	validate(cfg, &lc, path, errs);
	config_destroy(&lc);
	return errs->count > before ? -1 : 0;
}

void
config_resolve(struct config *cfg)
{
	char host[CONFIG_STR_MAX];

	if (cfg->header_authserv_id[0] != '\0')
		return;
	if (gethostname(host, sizeof host) != 0)
		text_copy(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	text_copy(cfg->header_authserv_id, sizeof cfg->header_authserv_id, host);
}

/* A key's value as text, for a message. */
static void
value_text(const struct key_spec *k, const struct config *cfg, char *buf, size_t size)
{
	const char *at = (const char *)cfg + k->offset;

	if (k->type == KEY_STRING)
		snprintf(buf, size, "\"%.100s\"", at);
	else if (k->type == KEY_OCTAL)
		snprintf(buf, size, "\"%03o\"", (unsigned)*(const int *)at);
	else if (k->type == KEY_BOOL)
		snprintf(buf, size, "%s", *(const bool *)at ? "true" : "false");
	else
		snprintf(buf, size, "%d", *(const int *)at);
}

static size_t
value_size(const struct key_spec *k)
{
	return k->type == KEY_STRING ? k->size : k->type == KEY_BOOL ? sizeof(bool)
									: sizeof(int);
}

int
config_keep_restart_keys(const struct config *running, struct config *next,
			 config_report_fn report, void *arg)
{
	int kept = 0;

	for (size_t i = 0; i < sizeof restart_keys / sizeof restart_keys[0]; i++) {
		const struct key_spec *k = find_key(restart_keys[i]);
		if (k == NULL)
			continue;
		const char *was = (const char *)running + k->offset;
		char *now = (char *)next + k->offset;
		char old_text[128], new_text[128];

		bool same = k->type == KEY_STRING ? strcmp(was, now) == 0
						  : memcmp(was, now, value_size(k)) == 0;
		if (same)
			continue;
		value_text(k, running, old_text, sizeof old_text);
		value_text(k, next, new_text, sizeof new_text);
		memcpy(now, was, value_size(k));
		if (report != NULL)
			report(arg, k->path, old_text, new_text);
		kept++;
	}
	return kept;
}

size_t
config_key_count(void)
{
	return sizeof keys / sizeof keys[0];
}

const char *
config_key_name(size_t i)
{
	return i < config_key_count() ? keys[i].path : NULL;
}
