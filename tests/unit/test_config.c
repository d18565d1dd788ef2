/* config.c: the shipped file, defaults, and every kind of error with its line. */
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

#include <libconfig.h>

#include "config.h"
#include "tests.h"

static char path[64];

static const char *
write_conf(const char *text)
{
	snprintf(path, sizeof path, "/tmp/smtptrace-test-XXXXXX");
	int fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void
test_shipped_file_is_defaults(void)
{
	struct config got, want;
	struct config_errors errs = { 0 };

	config_defaults(&want);
	config_defaults(&got);
	/* the tests run from the top of the tree */
	EXPECT_INT(config_load("conf/smtptrace.conf", true, &got, &errs), 0);
	EXPECT_INT(errs.count, 0);
	CU_ASSERT(memcmp(&got, &want, sizeof got) == 0);
}

/* conf/smtptrace.conf documents every key the parser knows. */
static void
test_shipped_file_has_every_key(void)
{
	config_t lc;

	config_init(&lc);
	CU_ASSERT_FATAL(config_read_file(&lc, "conf/smtptrace.conf") == CONFIG_TRUE);
	for (size_t i = 0; i < config_key_count(); i++) {
		if (config_lookup(&lc, config_key_name(i)) == NULL)
			fprintf(stderr, "\nconf/smtptrace.conf lacks %s\n", config_key_name(i));
		CU_ASSERT_PTR_NOT_NULL(config_lookup(&lc, config_key_name(i)));
	}
	config_destroy(&lc);
}

static void
test_check_socket(void)
{
	static const struct { const char *spec; int want; } cases[] = {
		{ "unix:/run/smtptrace/milter.sock", 0 }, { "local:/x", 0 }, { "/x", 0 },
		{ "inet:8895@127.0.0.1", 0 }, { "inet:8895", 0 }, { "inet6:8895@[::1]", 0 },
		{ "unix:x.sock", -1 }, { "inet:@127.0.0.1", -1 }, { "inet:0@h", -1 },
		{ "inet:65536@h", -1 }, { "tcp:25", -1 }, { "", -1 },
	};
	char msg[256];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int got = config_check_socket(cases[i].spec, msg, sizeof msg);
		if (got != cases[i].want)
			fprintf(stderr, "\n%s: got %d, want %d\n", cases[i].spec, got, cases[i].want);
		CU_ASSERT_EQUAL(got, cases[i].want);
	}
}

/* The whole file, for the documentation checks; NULL when unreadable. */
static char *
slurp(const char *file)
{
	FILE *f = fopen(file, "r");
	static char text[256 * 1024];
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	return text;
}

/* Every key of the table is documented in smtptrace.conf(5), as ".B key". */
static void
test_conf5_has_every_key(void)
{
	char *man = slurp("conf/smtptrace.conf.5");
	char want[128];

	CU_ASSERT_PTR_NOT_NULL_FATAL(man);
	for (size_t i = 0; i < config_key_count(); i++) {
		snprintf(want, sizeof want, "\n.B %s\n", config_key_name(i));
		if (strstr(man, want) == NULL)
			fprintf(stderr, "\nconf/smtptrace.conf.5 lacks %s\n", config_key_name(i));
		CU_ASSERT_PTR_NOT_NULL(strstr(man, want));
	}
}

static void
test_missing_default_file(void)
{
	struct config cfg;
	struct config_errors errs = { 0 };

	config_defaults(&cfg);
	EXPECT_INT(config_load("/nonexistent/smtptrace.conf", false, &cfg, &errs), 0);
	EXPECT_INT(config_load("/nonexistent/smtptrace.conf", true, &cfg, &errs), -1);
	EXPECT_CONTAINS(errs.msg[0], "/nonexistent/smtptrace.conf: cannot read");
}

static void
test_values(void)
{
	struct config cfg;
	struct config_errors errs = { 0 };

	config_defaults(&cfg);
	const char *p = write_conf(
		"socket = \"inet:8891@127.0.0.1\";\n"
		"socket_umask = \"022\";\n"
		"log: { facility = \"local3\"; format = \"json\"; ident = \"st\"; };\n"
		"header: { name = \"X-Trace\"; authserv_id = \"mx.example\";"
		" skip_authenticated = true; enable = false; };\n"
		"mta: { data_timeout = 10; timeout_tolerance = 0; };\n"
		"stall: { warn_after = 9; };\n");
	EXPECT_INT(config_load(p, true, &cfg, &errs), 0);
	unlink(p);
	EXPECT_STR(cfg.socket, "inet:8891@127.0.0.1");
	EXPECT_INT(cfg.socket_umask, 022);
	EXPECT_INT(cfg.log_facility, LOG_LOCAL3);
	EXPECT_INT(cfg.log_format, LOG_FORMAT_JSON);
	EXPECT_STR(cfg.log_ident, "st");
	EXPECT_STR(cfg.header_name, "X-Trace");
	EXPECT_STR(cfg.header_authserv_id, "mx.example");
	CU_ASSERT_TRUE(cfg.header_skip_authenticated);
	CU_ASSERT_FALSE(cfg.header_enable);
	EXPECT_INT(cfg.mta_data_timeout, 10);
	EXPECT_INT(cfg.mta_timeout_tolerance, 0);
}

struct bad {
	const char *text;
	const char *want;	/* the message after "file:" */
};

static const struct bad bad_cases[] = {
	{ "nosuch = 1;\n", "1: unknown key 'nosuch'" },
	{ "\n\nlog: { colour = \"red\"; };\n", "3: unknown key 'log.colour'" },
	{ "extra: { a = 1; };\n", "1: unknown section 'extra'" },
	{ "log: { header: { a = 1; }; };\n", "1: unknown section 'log.header'" },
	{ "socket = 5;\n", "1: socket: expected a string" },
	{ "header: {\n  enable = \"yes\";\n};\n", "2: header.enable: expected true or false" },
	{ "mta: { data_timeout = \"300\"; };\n", "1: mta.data_timeout: expected an integer" },
	{ "mta: { data_timeout = 0; };\n", "1: mta.data_timeout: 0 is out of range (1 to 86400)" },
	{ "mta: { data_timeout = 86401; };\n", "1: mta.data_timeout: 86401 is out of range" },
	{ "log: { format = \"xml\"; };\n", "1: log.format: \"xml\" is not one of: kv, json" },
	{ "log: { facility = \"kern\"; };\n", "1: log.facility: \"kern\" is not one of: mail" },
	{ "socket_umask = \"9\";\n", "1: socket_umask: \"9\" is not an octal number" },
	{ "socket_umask = 7;\n", "1: socket_umask: expected a string of octal digits" },
	{ "socket = \"/tmp/x\";\nuser = ;\n", "2: syntax error" },
	{ "header: { name = \"X Trace\"; };\n", "1: header.name: \"X Trace\" is not a header field name" },
	{ "header: { name = \"\"; };\n", "1: header.name: must not be empty" },
	{ "header: { authserv_id = \"a b\"; };\n", "1: header.authserv_id: must be printable ASCII" },
	{ "socket = \"tcp:25\";\n", "1: socket: \"tcp:25\" is not unix:/path" },
	{ "socket = \"unix:run/x.sock\";\n", "1: socket: \"unix:run/x.sock\": a unix socket needs an absolute path" },
	{ "socket = \"inet:99999@127.0.0.1\";\n", "1: socket: \"inet:99999@127.0.0.1\" is not unix:/path" },
	{ "mta: {\n data_timeout = 5;\n timeout_tolerance = 5;\n};\nstall: { warn_after = 4; };\n",
	  "3: mta.timeout_tolerance: 5 must be less than mta.data_timeout (5)" },
	{ "socket_umask = \" -0\";\n", "1: socket_umask: \" -0\" is not an octal number" },
	{ "socket_umask = \"+7\";\n", "1: socket_umask: \"+7\" is not an octal number" },
	{ "socket = \"inet:80@\";\n", "1: socket: \"inet:80@\" is not unix:/path" },
	{ "pidfile = \"run/x.pid\";\n", "1: pidfile: \"run/x.pid\" must be an absolute path" },
	{ "\nstall: { warn_after = 300; };\n",
	  "2: stall.warn_after: 300 must be less than mta.data_timeout (300)" },
};

static void
test_errors_name_file_and_line(void)
{
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		struct config cfg;
		struct config_errors errs = { 0 };
		char want[512];

		config_defaults(&cfg);
		const char *p = write_conf(bad_cases[i].text);
		snprintf(want, sizeof want, "%s:%s", p, bad_cases[i].want);
		EXPECT_INT(config_load(p, true, &cfg, &errs), -1);
		EXPECT_INT(errs.count, 1);
		EXPECT_CONTAINS(errs.msg[0], want);
		unlink(p);
	}
}

/* A directory named as the file says so (it once said "No such file"). */
static void
test_directory(void)
{
	struct config cfg;
	struct config_errors errs = { 0 };

	config_defaults(&cfg);
	EXPECT_INT(config_load("/tmp", true, &cfg, &errs), -1);
	EXPECT_INT(errs.count, 1);
	EXPECT_STR(errs.msg[0], "/tmp: is a directory, not a configuration file");
}

/* -p, -u, -P go through the checks of the file: nothing is cut short. */
static void
test_flags_checked(void)
{
	struct config cfg;
	struct config_errors errs = { 0 };
	char longpath[300];

	config_defaults(&cfg);
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[0] = '/';
	longpath[sizeof longpath - 1] = '\0';
	EXPECT_INT(config_set_flag(&cfg, "pidfile", longpath, "-P", &errs), -1);
	EXPECT_STR(errs.msg[0], "-P: longer than 255 bytes");
	EXPECT_STR(cfg.pidfile, "");
	EXPECT_INT(config_set_flag(&cfg, "socket", "unix:rel.sock", "-p", &errs), -1);
	EXPECT_CONTAINS(errs.msg[1], "-p: \"unix:rel.sock\": a unix socket needs an absolute path");
	EXPECT_INT(config_set_flag(&cfg, "socket", "inet:80@", "-p", &errs), -1);
	EXPECT_INT(config_set_flag(&cfg, "pidfile", "x.pid", "-P", &errs), -1);
	EXPECT_INT(errs.count, 4);
	EXPECT_INT(config_set_flag(&cfg, "socket", "inet:8899@127.0.0.1", "-p", &errs), 0);
	EXPECT_STR(cfg.socket, "inet:8899@127.0.0.1");
	EXPECT_INT(config_set_flag(&cfg, "user", "nobody:nogroup", "-u", &errs), 0);
	EXPECT_STR(cfg.user, "nobody:nogroup");
	EXPECT_INT(errs.count, 4);
}

static void
test_every_error_reported(void)
{
	struct config cfg;
	struct config_errors errs = { 0 };

	config_defaults(&cfg);
	const char *p = write_conf("a = 1;\nb = 2;\nlog: { format = \"x\"; };\n");
	EXPECT_INT(config_load(p, true, &cfg, &errs), -1);
	unlink(p);
	EXPECT_INT(errs.count, 3);
}

static void
test_resolve_authserv_id(void)
{
	struct config cfg;

	config_defaults(&cfg);
	config_resolve(&cfg);
	CU_ASSERT(cfg.header_authserv_id[0] != '\0');
	snprintf(cfg.header_authserv_id, sizeof cfg.header_authserv_id, "set.example");
	config_resolve(&cfg);
	EXPECT_STR(cfg.header_authserv_id, "set.example");
}

int
suite_config(void)
{
	CU_pSuite s = CU_add_suite("config", NULL, NULL);
	return s == NULL ||
	       !CU_add_test(s, "shipped file equals the defaults", test_shipped_file_is_defaults) ||
	       !CU_add_test(s, "shipped file documents every key", test_shipped_file_has_every_key) ||
	       !CU_add_test(s, "smtptrace.conf(5) documents every key", test_conf5_has_every_key) ||
	       !CU_add_test(s, "socket specs", test_check_socket) ||
	       !CU_add_test(s, "missing file", test_missing_default_file) ||
	       !CU_add_test(s, "values are read", test_values) ||
	       !CU_add_test(s, "errors name file and line", test_errors_name_file_and_line) ||
	       !CU_add_test(s, "every error is reported", test_every_error_reported) ||
	       !CU_add_test(s, "a directory is no file", test_directory) ||
	       !CU_add_test(s, "flags checked like the file", test_flags_checked) ||
	       !CU_add_test(s, "authserv-id defaults to the host name", test_resolve_authserv_id);
}
