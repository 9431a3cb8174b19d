/*
 * tsrun-runtime: the command podman and containerd run, in front of the
 * TypeScript one (dist/tsrun-runtime.cjs, cli/runtime.ts).
 *
 * A client runs the runtime 3-4 times per container (create, start, delete,
 * and containerd's cleanup delete --force); each run of a Node program costs
 * Node's start (~50-110 ms), against runc's few ms. Three of those calls need
 * nothing TypeScript decides: `create` wrote down what they need (plain files
 * in the container's state directory), and this program carries it out:
 *
 *   start ID              write a byte to exec.fifo and remove it
 *   kill ID SIGNAL        kill(2) the container's process, by its pid and start time
 *   delete [--force] ID   a stopped container: rmdir its cgroups, remove its state;
 *                         delete --force of a container that does not exist: nothing
 *
 * Anything else — another command, a flag it does not know, a container with
 * poststart or poststop hooks (no `fast` file), a paused one, any error — is
 * not decided here: the TypeScript runtime is exec'd with the same arguments,
 * and says what is wrong in its own words. So this file never reports an
 * error, and behaves exactly as the slow path where it acts at all.
 *
 * Files read (written by src/runtime/container.ts at create, in <root>/<id>/):
 *   pid          "<pid> <start time>\n" (field 22 of /proc/<pid>/stat)
 *   cgroups      the container's cgroup directories, one a line
 *   fast         exists when no hook has to run at start or delete
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../shared/procstat.h"

enum { DONE, SLOW };

static const char *root = "/run/tsrun-runtime";

/* <root>/<id>/<name>, or NULL when the id could name something else. */
static const char *state_path(char *buf, size_t len, const char *id, const char *name)
{
	/* runc's ids: letters, digits, _ + - . (not . or ..): never a path */
	if (!*id || strcmp(id, ".") == 0 || strcmp(id, "..") == 0 || strspn(id,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.") != strlen(id))
		return NULL;
	int n = snprintf(buf, len, "%s/%s%s%s", root, id, *name ? "/" : "", name);
	return n > 0 && (size_t)n < len ? buf : NULL;
}

static ssize_t read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

/* The container's process, if it still runs: its pid and start time as
 * `create` wrote them, and /proc says the same (a zombie does not run). */
static pid_t running_pid(const char *id)
{
	char path[PATH_MAX], buf[128], now[32], state;
	long pid;
	char start[32];
	if (!state_path(path, sizeof(path), id, "pid") || read_file(path, buf, sizeof(buf)) < 0 ||
	    sscanf(buf, "%ld %31s", &pid, start) != 2 || pid <= 0)
		return -1;
	int r = proc_start_time(pid, now, sizeof(now), &state);
	if (r == -1)
		return 0;
	if (r < 0)
		return -1;
	if (state == 'Z' || state == 'X' || strcmp(now, start) != 0)
		return 0;
	return (pid_t)pid;
}

/* Whether the file `name` exists in the container's state directory. */
static int has(const char *id, const char *name)
{
	char path[PATH_MAX];
	return state_path(path, sizeof(path), id, name) && access(path, F_OK) == 0;
}

/* Whether any of the container's cgroups is frozen (or freezing). */
static int frozen(const char *id)
{
	char path[PATH_MAX], list[8192], buf[256];
	if (!state_path(path, sizeof(path), id, "cgroups") || read_file(path, list, sizeof(list)) < 0)
		return 1; /* cannot tell: not here */
	for (char *save, *dir = strtok_r(list, "\n", &save); dir; dir = strtok_r(NULL, "\n", &save)) {
		snprintf(path, sizeof(path), "%s/freezer.state", dir);
		if (read_file(path, buf, sizeof(buf)) >= 0 && strncmp(buf, "THAWED", 6))
			return 1;
		snprintf(path, sizeof(path), "%s/cgroup.events", dir);
		if (read_file(path, buf, sizeof(buf)) >= 0 && strstr(buf, "frozen 1"))
			return 1;
	}
	return 0;
}

static int fast_start(int argc, char **argv)
{
	char path[PATH_MAX];
	if (argc != 1 || !has(argv[0], "fast") || !state_path(path, sizeof(path), argv[0], "exec.fifo"))
		return SLOW;
	/* Non-blocking: with the process gone there is no reader (ENXIO) */
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return SLOW;
	ssize_t n = write(fd, "0", 1);
	close(fd);
	if (n != 1)
		return SLOW;
	unlink(path);
	return DONE;
}

static const struct { const char *name; int sig; } signals[] = {
	{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
	{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT},
	{"STOP", SIGSTOP}, {"WINCH", SIGWINCH},
};

static int parse_signal(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (*s && !*end)
		return n > 0 && n < 65 ? (int)n : -1;
	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(signals) / sizeof(*signals); i++)
		if (strcmp(signals[i].name, s) == 0)
			return signals[i].sig;
	return -1;
}

static int fast_kill(int argc, char **argv)
{
	if (argc < 1 || argc > 2 || argv[0][0] == '-')
		return SLOW;
	int sig = argc == 2 ? parse_signal(argv[1]) : SIGTERM;
	if (sig < 0)
		return SLOW;
	/* A created one waits on its fifo, a paused one would need a thaw to die */
	if (has(argv[0], "exec.fifo") || frozen(argv[0]))
		return SLOW;
	pid_t pid = running_pid(argv[0]);
	if (pid <= 0 || kill(pid, sig) < 0)
		return SLOW;
	return DONE;
}

/* rmdir, waiting up to 3 s while the kernel lets go of tasks that are exiting */
static int rmdir_retry(const char *dir)
{
	for (int i = 0; i < 300; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -1;
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	return -1;
}

static int fast_delete(int argc, char **argv)
{
	int force = 0;
	char path[PATH_MAX], dir[PATH_MAX], list[8192];
	for (; argc > 1 && argv[0][0] == '-'; argc--, argv++) {
		if (strcmp(argv[0], "-f") && strcmp(argv[0], "--force"))
			return SLOW;
		force = 1;
	}
	if (argc != 1 || !state_path(dir, sizeof(dir), argv[0], ""))
		return SLOW;
	const char *id = argv[0];
	if (!has(id, "state.json")) {
		/* a create that never finished: the slow path removes what it left */
		if (access(dir, F_OK) == 0)
			return SLOW;
		return force ? DONE : SLOW; /* runc: no error with --force */
	}
	if (!has(id, "fast") || running_pid(id) != 0)
		return SLOW;
	/* Stopped: its cgroups (a process left in one: the slow path kills it) */
	if (!state_path(path, sizeof(path), id, "cgroups") || read_file(path, list, sizeof(list)) < 0)
		return SLOW;
	for (char *save, *d = strtok_r(list, "\n", &save); d; d = strtok_r(NULL, "\n", &save)) {
		char procs[PATH_MAX], pids[16];
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", d);
		if (read_file(procs, pids, sizeof(pids)) > 0 || rmdir_retry(d) < 0)
			return SLOW;
	}
	/* ...and its state: the files create wrote, nothing below them */
	static const char *const files[] = {"pid", "cgroups", "fast", "exec.fifo", "config.json", "state.json"};
	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++)
		if (state_path(path, sizeof(path), id, files[i]) && unlink(path) < 0 && errno != ENOENT)
			return SLOW;
	if (rmdir(dir) < 0 && errno != ENOENT)
		return SLOW;
	return DONE;
}

/* Which of fds 3.. our caller gave us, for --preserve-fds: Node makes fds of
 * its own before any of its code runs, where no inherited one is, and marks
 * every fd close-on-exec, so it cannot tell them apart; we can. */
static void note_caller_fds(void)
{
	char list[4096] = "";
	size_t len = 0;
	for (int fd = 3; fd < 1004 && len < sizeof(list) - 8; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%d", len ? "," : "", fd);
	setenv("TSRUN_RUNTIME_CALLER_FDS", list, 1);
}

/* The TypeScript runtime, next to us in the package: <pkg>/dist/tsrun-runtime.cjs
 * (we are <pkg>/native/build/tsrun-runtime). */
static _Noreturn void slow(char **argv)
{
	char self[PATH_MAX], script[PATH_MAX + 64];
	note_caller_fds();
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		for (int up = 0; slash && up < 2; up++) {
			*slash = '\0';
			slash = strrchr(self, '/');
		}
		if (slash) {
			*slash = '\0';
			snprintf(script, sizeof(script), "%s/dist/tsrun-runtime.cjs", self);
			argv[0] = script;
			execv(script, argv);
		}
	}
	fprintf(stderr, "tsrun-runtime: cannot run %s: %s\n", n > 0 ? script : "/proc/self/exe", strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	int i = 1;
	/* runc's global flags before the command; only --root matters here */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
			root = argv[++i];
		else if (strncmp(argv[i], "--root=", 7) == 0)
			root = argv[i] + 7;
		else if ((strcmp(argv[i], "--log") == 0 || strcmp(argv[i], "--log-format") == 0) && i + 1 < argc)
			i++;
		else if (strncmp(argv[i], "--log=", 6) && strncmp(argv[i], "--log-format=", 13))
			slow(argv); /* --debug, --systemd-cgroup, --version, ...: the slow path's */
	}
	if (i >= argc)
		slow(argv);
	const char *cmd = argv[i];
	int r = SLOW;
	if (strcmp(cmd, "start") == 0)
		r = fast_start(argc - i - 1, argv + i + 1);
	else if (strcmp(cmd, "kill") == 0)
		r = fast_kill(argc - i - 1, argv + i + 1);
	else if (strcmp(cmd, "delete") == 0)
		r = fast_delete(argc - i - 1, argv + i + 1);
	if (r == DONE)
		return 0;
	slow(argv);
}
