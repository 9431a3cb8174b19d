/* front.h: what the parts of tsrun's native front share (tsrun.c: exec and the
 * dispatch; ps.c: ps). Each part answers what it can without Node and calls
 * slow() for anything else, before it has printed anything. */
#ifndef TSRUN_FRONT_H
#define TSRUN_FRONT_H
#include <stddef.h>
#include <sys/types.h>

/* The store: --root, else TSRUN_ROOT, else /var/lib/tsrun; main() hands Node any
 * but an absolute path without "." or "..". */
extern const char *root;

/* Node runs the TypeScript CLI with the arguments as given. */
_Noreturn void slow(void);

/* A growing, NUL-terminated buffer (out of memory: Node's). */
struct buf {
	char *p;
	size_t len, cap;
};
void put(struct buf *b, const char *s, size_t n);
void puts_(struct buf *b, const char *s);

/* dir/name into out (PATH_MAX); a path too long for it is Node's to report. */
char *path_in(char *out, const char *dir, const char *name);
/* At most len - 1 bytes of a file (not a symlink), NUL-terminated; -1 when it cannot be opened. */
ssize_t read_file(const char *path, char *out, size_t len);
/* s is 1 to max lowercase hex digits. */
int is_hex(const char *s, size_t max);
/* Integers JavaScript holds exactly; past them Node would print a rounded value. */
#define SAFE_INTEGER 9007199254740991LL
/* A number the monitor wrote, as Number() reads it: only plain decimal
 * integers ("-12", "007"); anything else is Node's (slow()). */
long long decimal(const char *v);

/* The monitor's status file (native/status.c) as record.ts readMonitorStatus
 * reads it: key=value lines up to the first empty one (the padding), the last
 * of a key winning; "" for a key not there, status "unknown" without one. A
 * value longer than any tsrun writes is Node's. */
struct monitor {
	char status[64], pid[32], monitor_pid[32], start_time[64], exit_code[32], started[128], finished[128], restart_count[32];
};
void read_monitor(char *text, struct monitor *m);
/* Its monitor runs: the pid it recorded, with the start time it recorded, not a zombie. */
int monitor_alive(const struct monitor *m);
/* The status file's checksum line is there and checks out. */
int checksum_ok(const char *text);

/* `tsrun ps` from argv[i] on (the word after ps): its exit status, or slow(). */
int ps_main(int argc, char **argv, int i);

#endif
