/*
 * NAME
 *	fuzz_config - config_load on random files, socket and listen specs, flags
 * DESCRIPTION
 *	The input is a configuration file (written to a memfd and read back
 *	through /proc/self/fd; inputs with "@include" are skipped: an include
 *	could read any file). Each of its first lines, and the text between
 *	its first two quotes, is also tried as a socket spec, a listen
 *	address and a -p/-u/-P flag value. Properties (config.h and
 *	conf/smtptrace.conf.5):
 *
 *	prop_errors     config_load returns 0 with no message, or -1 with at
 *	                most CONFIG_ERRORS_MAX messages, each "file: message"
 *	                or "file:line: message" with the line in the file; at
 *	                least one names a line (with FUZZ_KNOWN_BUGS=1: see
 *	                README, a cross-key error about a key the file lacks
 *	                has no line)
 *	prop_ranges     after a 0, every value is in its documented range
 *	                (conf(5)), the socket and listen address valid
 *	prop_as_written after a 0, each key the file sets holds exactly what the
 *	                file says (read again with libconfig: no string cut, no
 *	                number changed); each key it does not set keeps its
 *	                default
 *	prop_socket     config_check_socket accepts exactly unix:/abs, local:/abs,
 *	                /abs, inet:PORT, inet:PORT@HOST, inet6:... (PORT digits,
 *	                1-65535; HOST not empty); a refusal has a message
 *	prop_listen     config_parse_listen: the documented forms (IPv4:port,
 *	                [IPv6]:port) are accepted; whatever is accepted gives an
 *	                address of that family and the port as written, digits
 *	                only (with FUZZ_KNOWN_BUGS=1: a sign or blanks before
 *	                the port are accepted today)
 *	prop_flag       config_set_flag (-p, -u, -P) accepts a value exactly
 *	                when the same value in the file loads, and stores it
 *	                whole; an error names the flag
 *	prop_reload     config_keep_restart_keys, between the defaults and the
 *	                file both ways: the keys conf(5)'s RELOAD section names
 *	                keep the running values, each one that differed is
 *	                reported once, the others take the new values
 *	The table of keys below is conf(5)'s types and ranges; at start the
 *	target checks it has every key of config.c (config_key_name).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <libconfig.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINES_TRIED	8

enum key_type { K_STR, K_INT, K_BOOL, K_FACILITY, K_FORMAT, K_OCTAL };

struct key {
	const char   *path;
	enum key_type type;
	size_t        offset, size;
	long          min, max;		/* conf(5) */
};

#define S(p, m)		{ p, K_STR, offsetof(struct config, m), sizeof(((struct config *)0)->m), 0, 0 }
#define I(p, m, lo, hi)	{ p, K_INT, offsetof(struct config, m), 0, lo, hi }
#define B(p, m)		{ p, K_BOOL, offsetof(struct config, m), 0, 0, 0 }

/* The keys conf(5) documents, with its ranges. */
static const struct key keys[] = {
	S("socket", socket),
	{ "socket_umask", K_OCTAL, offsetof(struct config, socket_umask), 0, 0, 0777 },
	S("user", user),
	S("pidfile", pidfile),
	I("milter_timeout", milter_timeout, 10, 86400),
	{ "log.facility", K_FACILITY, offsetof(struct config, log_facility), 0, 0, 0 },
	S("log.ident", log_ident),
	{ "log.format", K_FORMAT, offsetof(struct config, log_format), 0, 0, 0 },
	B("log.verbose", log_verbose),
	B("header.enable", header_enable),
	S("header.name", header_name),
	S("header.authserv_id", header_authserv_id),
	B("header.skip_authenticated", header_skip_authenticated),
	B("header.explain", header_explain),
	I("mta.data_timeout", mta_data_timeout, 1, 86400),
	I("mta.timeout_tolerance", mta_timeout_tolerance, 0, 3600),
	I("stall.warn_after", stall_warn_after, 1, 86400),
	I("stall.repeat_every", stall_repeat_every, 0, 86400),
	S("metrics.textfile", metrics_textfile),
	I("metrics.textfile_interval", metrics_textfile_interval, 1, 3600),
	S("metrics.http_listen", metrics_http_listen),
	I("metrics.recent", metrics_recent, 0, 100000),
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const struct { const char *name; int value; } facilities[] = {
	{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

static int memfd = -1;
static char path[64];

static const char *
str_at(const struct config *cfg, const struct key *k)
{
	return (const char *)cfg + k->offset;
}

static int
int_at(const struct config *cfg, const struct key *k)
{
	return *(const int *)(const void *)((const char *)cfg + k->offset);
}

static bool
bool_at(const struct config *cfg, const struct key *k)
{
	return *(const bool *)(const void *)((const char *)cfg + k->offset);
}

/* ---- oracles from the documentation ----------------------------------------- */

/* A port: digits only, 1-65535; returns it or -1. */
static long
port_digits(const char *s, size_t len)
{
	long port = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		port = port * 10 + (s[i] - '0');
		if (port > 65535)
			return -1;
	}
	return port >= 1 ? port : -1;
}

/* conf(5): inet:port@host, inet6:port@host (port 1 to 65535) or unix:/absolute/path. */
static bool
socket_valid(const char *spec)
{
	const char *p;

	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0)
		return strchr(spec, ':')[1] == '/';
	if (spec[0] == '/')
		return true;
	if (strncmp(spec, "inet:", 5) == 0)
		p = spec + 5;
	else if (strncmp(spec, "inet6:", 6) == 0)
		p = spec + 6;
	else
		return false;
	const char *at = strchr(p, '@');
	size_t plen = at ? (size_t)(at - p) : strlen(p);
	/* "inet:port" listens on every address; "inet:port@" names no host */
	return port_digits(p, plen) > 0 && (at == NULL || at[1] != '\0');
}

/* conf(5): 127.0.0.1:9754 or [::1]:9754. */
static bool
listen_documented(const char *spec)
{
	char host[80];
	const char *colon;
	unsigned char addr[16];
	int family = AF_INET;

	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');
		if (end == NULL || end[1] != ':' || (size_t)(end - spec) > sizeof host)
			return false;
		snprintf(host, sizeof host, "%.*s", (int)(end - spec - 1), spec + 1);
		colon = end + 1;
		family = AF_INET6;
	} else {
		colon = strrchr(spec, ':');
		if (colon == NULL || (size_t)(colon - spec) >= sizeof host)
			return false;
		snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
	}
	return inet_pton(family, host, addr) == 1 && port_digits(colon + 1, strlen(colon + 1)) > 0;
}

/* ---- properties --------------------------------------------------------------- */

static void
prop_socket(const char *spec)
{
	char msg[256];

	memset(msg, 0, sizeof msg);
	int rc = config_check_socket(spec, msg, sizeof msg);
	FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
	FUZZ_CHECK((rc == 0) == socket_valid(spec), "socket \"%s\": rc %d, documented %d",
		   spec, rc, socket_valid(spec));
	if (rc < 0)
		FUZZ_CHECK(msg[0] != '\0' && memchr(msg, '\0', sizeof msg) != NULL,
			   "a refused socket without a message");
}

static void
prop_listen(const char *spec)
{
	struct sockaddr_storage ss;
	char msg[256], addr[INET6_ADDRSTRLEN];

	memset(msg, 0, sizeof msg);
	int rc = config_parse_listen(spec, &ss, msg, sizeof msg);
	FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
	if (listen_documented(spec))
		FUZZ_CHECK(rc == 0, "listen \"%s\" in a documented form refused: %s", spec, msg);
	if (rc < 0) {
		FUZZ_CHECK(msg[0] != '\0', "a refused listen address without a message");
		return;
	}
	FUZZ_CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6, "family %d",
		   ss.ss_family);
	const char *colon = strrchr(spec, ':');
	FUZZ_CHECK(colon != NULL, "accepted without a port");
	long port = strtol(colon + 1, NULL, 10);
	in_port_t got = ss.ss_family == AF_INET
		? ((struct sockaddr_in *)(void *)&ss)->sin_port
		: ((struct sockaddr_in6 *)(void *)&ss)->sin6_port;
	FUZZ_CHECK(ntohs(got) == port && port >= 1 && port <= 65535,
		   "\"%s\": port %u", spec, ntohs(got));
	FUZZ_CHECK(port_digits(colon + 1, strlen(colon + 1)) == port,
			 "listen \"%s\": the port is not digits only", spec);
	const void *a = ss.ss_family == AF_INET
		? (const void *)&((struct sockaddr_in *)(void *)&ss)->sin_addr
		: (const void *)&((struct sockaddr_in6 *)(void *)&ss)->sin6_addr;
	FUZZ_CHECK(inet_ntop(ss.ss_family, a, addr, sizeof addr) != NULL, "address");
}

static int
lines_in(const uint8_t *data, size_t size)
{
	int n = 1;

	for (size_t i = 0; i < size; i++)
		n += data[i] == '\n';
	return n;
}

/* "file: message" or "file:LINE: message", LINE within the file; returns LINE or 0. */
static int
error_line(const char *msg, int nlines)
{
	size_t pl = strlen(path);

	FUZZ_CHECK(memchr(msg, '\0', sizeof ((struct config_errors *)0)->msg[0]) != NULL,
		   "an unterminated message");
	FUZZ_CHECK(strncmp(msg, path, pl) == 0 && msg[pl] == ':', "\"%s\" does not name the file",
		   msg);
	const char *p = msg + pl + 1;
	if (*p == ' ') {
		FUZZ_CHECK(p[1] != '\0', "an empty message: \"%s\"", msg);
		return 0;
	}
	char *end;
	long line = strtol(p, &end, 10);
	FUZZ_CHECK(isdigit((unsigned char)*p) && end[0] == ':' && end[1] == ' ' && end[2] != '\0',
		   "\"%s\" is not file:line: message", msg);
	FUZZ_CHECK(line >= 1 && line <= nlines, "\"%s\": line %ld of %d", msg, line, nlines);
	return (int)line;
}

static void
prop_errors(int rc, int before, const struct config_errors *errs, int nlines)
{
	int with_line = 0;

	FUZZ_CHECK(rc == 0 || rc == -1, "config_load returned %d", rc);
	FUZZ_CHECK(errs->count >= before && errs->count <= CONFIG_ERRORS_MAX, "%d errors",
		   errs->count);
	if (rc == 0) {
		FUZZ_CHECK(errs->count == before, "0 with %d messages", errs->count - before);
		return;
	}
	FUZZ_CHECK(errs->count > before, "-1 without a message");
	for (int i = before; i < errs->count; i++)
		with_line += error_line(errs->msg[i], nlines) > 0;
	FUZZ_CHECK(with_line > 0, "-1, and no message names a line: \"%s\"",
			 errs->msg[before]);
}

static bool
in_range(const struct config *cfg, const struct key *k)
{
	const char *s = str_at(cfg, k);

	switch (k->type) {
	case K_INT:
	case K_OCTAL:
		return int_at(cfg, k) >= k->min && int_at(cfg, k) <= k->max;
	case K_BOOL:
		return true;
	case K_FORMAT:
		return int_at(cfg, k) == LOG_FORMAT_KV || int_at(cfg, k) == LOG_FORMAT_JSON;
	case K_FACILITY:
		for (size_t i = 0; i < sizeof facilities / sizeof facilities[0]; i++)
			if (facilities[i].value == int_at(cfg, k))
				return true;
		return false;
	case K_STR:
		break;
	}
	if (memchr(s, '\0', k->size) == NULL)
		return false;
	if (strcmp(k->path, "socket") == 0)
		return socket_valid(s);
	if (strcmp(k->path, "pidfile") == 0 || strcmp(k->path, "metrics.textfile") == 0)
		return s[0] == '\0' || s[0] == '/';
	if (strcmp(k->path, "metrics.http_listen") == 0)
		return s[0] == '\0' || config_parse_listen(s, NULL, (char[200]){ 0 }, 200) == 0;
	bool name = strcmp(k->path, "header.name") == 0;
	if (name || strcmp(k->path, "header.authserv_id") == 0) {
		if (name && s[0] == '\0')
			return false;
		for (const char *p = s; *p; p++)
			if (*p <= ' ' || *p > '~' || *p == (name ? ':' : ';'))
				return false;
	}
	return true;
}

static void
prop_ranges(const struct config *cfg)
{
	for (size_t i = 0; i < NKEYS; i++)
		FUZZ_CHECK(in_range(cfg, &keys[i]), "%s is out of its documented range",
			   keys[i].path);
	FUZZ_CHECK(cfg->mta_timeout_tolerance < cfg->mta_data_timeout &&
		   cfg->stall_warn_after < cfg->mta_data_timeout,
		   "tolerance %d, warn_after %d, data_timeout %d", cfg->mta_timeout_tolerance,
		   cfg->stall_warn_after, cfg->mta_data_timeout);
}

/* One key against what the file says (st) or, when it says nothing, the default. */
static void
expect_as_written(const struct config *cfg, const struct config *def, const struct key *k,
		  const config_setting_t *st)
{
	const char *v = NULL;

	if (st == NULL) {
		bool same = k->type == K_STR ? strcmp(str_at(cfg, k), str_at(def, k)) == 0
			  : k->type == K_BOOL ? bool_at(cfg, k) == bool_at(def, k)
			  : int_at(cfg, k) == int_at(def, k);
		FUZZ_CHECK(same, "%s is not in the file and not its default", k->path);
		return;
	}
	if (k->type == K_STR || k->type == K_FACILITY || k->type == K_FORMAT ||
	    k->type == K_OCTAL)
		v = config_setting_get_string(st);
	switch (k->type) {
	case K_STR:
		FUZZ_CHECK(v != NULL && strcmp(str_at(cfg, k), v) == 0,
			   "%s: \"%s\" is not what the file says", k->path, str_at(cfg, k));
		break;
	case K_INT:
		FUZZ_CHECK(int_at(cfg, k) == config_setting_get_int64(st), "%s: %d, the file says %lld",
			   k->path, int_at(cfg, k), config_setting_get_int64(st));
		break;
	case K_BOOL:
		FUZZ_CHECK(bool_at(cfg, k) == (config_setting_get_bool(st) != 0), "%s", k->path);
		break;
	case K_OCTAL:
		FUZZ_CHECK(v != NULL && int_at(cfg, k) == strtol(v, NULL, 8), "%s", k->path);
		break;
	case K_FORMAT:
		FUZZ_CHECK(v != NULL && int_at(cfg, k) == (strcmp(v, "json") == 0 ? LOG_FORMAT_JSON
								      : LOG_FORMAT_KV),
			   "%s", k->path);
		break;
	case K_FACILITY:
		for (size_t i = 0; v != NULL && i < sizeof facilities / sizeof facilities[0]; i++)
			if (strcmp(facilities[i].name, v) == 0)
				FUZZ_CHECK(int_at(cfg, k) == facilities[i].value, "%s", k->path);
		break;
	}
}

static void
prop_as_written(const struct config *cfg)
{
	struct config def;
	config_t lc;

	config_defaults(&def);
	config_init(&lc);
	FUZZ_CHECK(config_read_file(&lc, path) == CONFIG_TRUE, "libconfig disagrees: %s",
		   config_error_text(&lc));
	for (size_t i = 0; i < NKEYS; i++)
		expect_as_written(cfg, &def, &keys[i], config_lookup(&lc, keys[i].path));
	config_destroy(&lc);
}

static int
load(const void *text, size_t len, struct config *cfg, struct config_errors *errs)
{
	if (ftruncate(memfd, 0) != 0 || pwrite(memfd, text, len, 0) != (ssize_t)len)
		abort();
	config_defaults(cfg);
	memset(errs, 0, sizeof *errs);
	return config_load(path, true, cfg, errs);
}

/* The value as a libconfig string literal. */
static void
literal(const char *v, char *out, size_t size)
{
	size_t n = 0;

	out[n++] = '"';
	for (; *v != '\0' && n + 6 < size; v++) {
		unsigned char c = (unsigned char)*v;
		if (c == '"' || c == '\\')
			n += (size_t)snprintf(out + n, size - n, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			n += (size_t)snprintf(out + n, size - n, "\\x%02x", c);
		else
			out[n++] = (char)c;
	}
	snprintf(out + n, size - n, "\"");
}

/* -p, -u, -P: the same checks as the file (issue 8 item 5). */
static void
prop_flag(const char *value)
{
	static const struct { const char *key, *flag; } flags[] = {
		{ "socket", "-p" }, { "user", "-u" }, { "pidfile", "-P" },
	};
	static char file[20000], lit[4 * 4096 + 16];
	struct config by_flag, by_file;
	struct config_errors errs, ferrs;

	literal(value, lit, sizeof lit);
	for (size_t i = 0; i < 3; i++) {
		config_defaults(&by_flag);
		memset(&errs, 0, sizeof errs);
		int rc = config_set_flag(&by_flag, flags[i].key, value, flags[i].flag, &errs);
		int n = snprintf(file, sizeof file, "%s = %s;\n", flags[i].key, lit);
		int frc = load(file, (size_t)n, &by_file, &ferrs);
		FUZZ_CHECK(rc == frc, "%s \"%s\": the flag gives %d, the file %d (%s)",
			   flags[i].flag, value, rc, frc, frc ? ferrs.msg[0] : errs.msg[0]);
		if (rc == 0) {
			FUZZ_CHECK(memcmp(&by_flag, &by_file, sizeof by_flag) == 0,
				   "%s: the flag and the file store different values", flags[i].flag);
		} else {
			FUZZ_CHECK(errs.count >= 1 && strncmp(errs.msg[0], flags[i].flag,
							      strlen(flags[i].flag)) == 0,
				   "a flag error does not name %s: \"%s\"", flags[i].flag, errs.msg[0]);
		}
	}
}

/* conf(5) RELOAD: the keys that keep their running values until a restart. */
static bool restart[NKEYS];

static const struct key *
key_named(const char *name, size_t *index)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].path, name) == 0) {
			if (index != NULL)
				*index = i;
			return &keys[i];
		}
	}
	return NULL;
}

/*
 * Once: the keys here are config.c's (config_key_name), and the keys
 * conf(5)'s RELOAD section names are the ones that need a restart.
 */
static void
read_documentation(void)
{
	char word[128];
	int in_reload = 0, found = 0;
	FILE *f = fopen(FUZZ_TOP "/conf/smtptrace.conf.5", "r");

	for (size_t i = 0; i < config_key_count(); i++)
		FUZZ_CHECK(key_named(config_key_name(i), NULL) != NULL,
			   "config.c has a key %s: add it to fuzz_config.c's table with its "
			   "conf(5) type and range", config_key_name(i));
	FUZZ_CHECK(config_key_count() == NKEYS, "fuzz_config.c's table has keys config.c has not");
	FUZZ_CHECK(f != NULL, "cannot read " FUZZ_TOP "/conf/smtptrace.conf.5");
	while (fscanf(f, "%127s", word) == 1) {
		if (strncmp(word, ".SH", 3) == 0) {
			if (fscanf(f, "%127s", word) != 1)
				break;
			in_reload = strcmp(word, "RELOAD") == 0;
			continue;
		}
		size_t n = strlen(word), i;
		while (n > 0 && strchr(".,:;)", word[n - 1]) != NULL)
			word[--n] = '\0';
		if (in_reload && key_named(word, &i) != NULL) {
			restart[i] = true;
			found++;
		}
	}
	fclose(f);
	FUZZ_CHECK(found > 0, "conf(5)'s RELOAD section names no key");
}

struct reported {
	int  n;
	bool key[NKEYS];
};

static void
note_report(void *arg, const char *key, const char *running, const char *in_file)
{
	struct reported *rep = arg;
	size_t i;

	FUZZ_CHECK(key_named(key, &i) != NULL && restart[i],
		   "%s reported as needing a restart, conf(5) does not say so", key);
	FUZZ_CHECK(!rep->key[i], "%s reported twice", key);
	FUZZ_CHECK(running != NULL && in_file != NULL, "%s: no values in the report", key);
	rep->key[i] = true;
	rep->n++;
}

static bool
same_value(const struct config *a, const struct config *b, const struct key *k)
{
	if (k->type == K_STR)
		return strcmp(str_at(a, k), str_at(b, k)) == 0;
	if (k->type == K_BOOL)
		return bool_at(a, k) == bool_at(b, k);
	return int_at(a, k) == int_at(b, k);
}

static void
prop_reload(const struct config *running, const struct config *file)
{
	struct config next = *file;
	struct reported rep = { 0 };
	int n = config_keep_restart_keys(running, &next, note_report, &rep);

	FUZZ_CHECK(n == rep.n, "returned %d, reported %d", n, rep.n);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		if (!restart[i]) {
			FUZZ_CHECK(same_value(&next, file, k), "%s did not take the new value",
				   k->path);
			continue;
		}
		FUZZ_CHECK(same_value(&next, running, k), "%s changed without a restart",
			   k->path);
		FUZZ_CHECK(rep.key[i] == !same_value(running, file, k),
			   "%s: reported %d, differed %d", k->path, rep.key[i],
			   !same_value(running, file, k));
	}
}

/* A line of the input, and the text between its first two quotes. */
static void
specs(const uint8_t *data, size_t size)
{
	char spec[4096];
	size_t start = 0;

	for (int n = 0; n < LINES_TRIED && start <= size; n++) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - data) : size;
		size_t len = end - start < sizeof spec ? end - start : sizeof spec - 1;
		memcpy(spec, data + start, len);
		spec[len] = '\0';
		prop_socket(spec);
		prop_listen(spec);
		if (n < 2)
			prop_flag(spec);
		char *q1 = strchr(spec, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
		if (q2 != NULL) {
			*q2 = '\0';
			prop_socket(q1 + 1);
			prop_listen(q1 + 1);
			prop_flag(q1 + 1);
		}
		if (nl == NULL)
			break;
		start = end + 1;
	}
}

/* libconfig's @include would read another file: such inputs are skipped. */
static bool
has_include(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i + 8 <= size; i++)
		if (data[i] == '@' && strncasecmp((const char *)data + i + 1, "include", 7) == 0)
			return true;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	struct config_errors errs;

	if (has_include(data, size))
		return -1;
	if (memfd < 0) {
		read_documentation();
		memfd = memfd_create("fuzz_config", 0);
		if (memfd < 0)
			abort();
		snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
	}
	int rc = load(data, size, &cfg, &errs);
	prop_errors(rc, 0, &errs, lines_in(data, size));
	if (rc == 0) {
		struct config def;
		prop_ranges(&cfg);
		prop_as_written(&cfg);
		config_defaults(&def);
		prop_reload(&def, &cfg);
		prop_reload(&cfg, &def);
		prop_reload(&cfg, &cfg);
	}
	specs(data, size);
	return 0;
}
