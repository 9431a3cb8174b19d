/*
 * tsrun-sys.node: the libc calls Node's `fs` lacks that commands make on their hot paths, as a
 * Node-API addon (src/sys/libc.ts): flock(2), which every state-changing command makes, and
 * umount2(2), which removes a container's network namespace when it ends.
 *
 * koffi can make these calls too, but loading it costs 13-17 ms of every `run`, `rm` or `stop`
 * on a 2-core VM; this addon loads in well under a millisecond. Node-API is ABI-stable, so one
 * build serves every Node >= 20.
 *
 *   flock(fd, operation) -> 0, or the errno of the failed call (a positive number)
 *   umount2(path, flags) -> the same
 *   keepFreedMemory(trimBytes, mmapBytes) -> whether glibc took both settings
 *   releaseFreedMemory() -> glibc's defaults again, and what is free back to the kernel
 *   spawnPiped, waitExit, spawnHelper, reapIfGone: processes without forking Node (below)
 *   watchChannel(fd, onChunk), shutdownChannel(fd): the helper's control socket without
 *     node:net (below)
 *   testBind(protocol, address, port): whether -p may use a host port (below)
 *   mapFile(fd, asString): a file's bytes without copying them (below)
 *   setV8Flags(flags): V8's flags without loading node:v8 (below)
 *
 * keepFreedMemory is for the commands that stream layers (pull, load, build): by default glibc
 * hands freed memory back to the kernel (buffers above 128 KiB are unmapped when freed, and a
 * heap's free top beyond it is trimmed), and the next buffer then takes a page fault per 4 KiB
 * it touches: on a VM ~15 us each, ~0.2 s of CPU in a 90 MB pull. With these thresholds the
 * process keeps what it freed, up to trimBytes, for its next buffers.
 */
#define NAPI_VERSION 8
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <node_api.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>

static napi_value js_flock(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd, op;
  napi_value result;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &op) != napi_ok) {
    napi_throw_type_error(env, NULL, "flock(fd, operation): two integers");
    return NULL;
  }
  int rc;
  do {
    rc = flock(fd, op);
  } while (rc != 0 && errno == EINTR);
  napi_create_int32(env, rc == 0 ? 0 : errno, &result);
  return result;
}

static napi_value js_umount2(napi_env env, napi_callback_info info) {
  size_t argc = 2, len;
  napi_value argv[2];
  int32_t flags;
  char path[4096];
  napi_value result;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof(path), &len) != napi_ok || len == 0 ||
      len >= sizeof(path) - 1 || strlen(path) != len || napi_get_value_int32(env, argv[1], &flags) != napi_ok) {
    napi_throw_type_error(env, NULL, "umount2(path, flags): a path (no NUL, under 4 KiB) and an integer");
    return NULL;
  }
  napi_create_int32(env, umount2(path, flags) == 0 ? 0 : errno, &result);
  return result;
}

static napi_value js_keep_freed_memory(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t trim, mmap_threshold;
  napi_value result;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, argv[0], &trim) != napi_ok || napi_get_value_int32(env, argv[1], &mmap_threshold) != napi_ok ||
      trim <= 0 || mmap_threshold <= 0) {
    napi_throw_type_error(env, NULL, "keepFreedMemory(trimBytes, mmapBytes): two positive integers");
    return NULL;
  }
  bool taken = false;
#ifdef __GLIBC__
  /* mallopt returns 1 on success; a threshold beyond glibc's maximum is refused (0). */
  taken = mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1;
  taken = mallopt(M_TRIM_THRESHOLD, trim) == 1 && taken;
#endif
  napi_get_boolean(env, taken, &result);
  return result;
}

extern char **environ;

/* posix_spawnp with what libuv gives a child: every signal at its default, none blocked (and,
 * with `flags`, more: POSIX_SPAWN_SETSID). Returns 0 or a negative errno. */
static int spawn_child(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa, char **args, short flags) {
  posix_spawnattr_t attr;
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | flags);
  int rc = posix_spawnp(pid, file, fa, &attr, args, environ);
  posix_spawnattr_destroy(&attr);
  return -rc;
}

/* The strings of a JS array, copied into out[first..first+n-1] (malloc'd, NUL-free): 0, or
 * -EINVAL for anything else. */
static int get_strings(napi_env env, napi_value array, uint32_t n, char **out) {
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    size_t len;
    if (napi_get_element(env, array, i, &v) != napi_ok || napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok ||
        !(out[i] = malloc(len + 1)) || napi_get_value_string_utf8(env, v, out[i], len + 1, &len) != napi_ok ||
        strlen(out[i]) != len)
      return -EINVAL;
  }
  return 0;
}

/* spawnPiped(argv) -> [pid, stdin, stdout, stderr] (the parent's pipe ends, close-on-exec),
 * or a negative errno. posix_spawnp: the child shares our memory until it execs (vfork), where
 * fork would copy Node's page tables first, several milliseconds on a VM; the child gets every
 * signal at its default and none blocked, as libuv gives its children. */
static napi_value js_spawn_piped(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  uint32_t n = 0;
  bool is_array = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[0], &n) != napi_ok || n == 0 || n > 1024) {
    napi_throw_type_error(env, NULL, "spawnPiped(argv): a non-empty array of strings");
    return NULL;
  }
  char **args = calloc(n + 1, sizeof(char *));
  int err = 0, pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  pid_t pid = -1;
  if (!args) {
    napi_throw_error(env, NULL, "spawnPiped: out of memory");
    return NULL;
  }
  err = get_strings(env, argv[0], n, args);
  for (int i = 0; i < 3 && err == 0; i++)
    if (pipe2(pipes[i], O_CLOEXEC) != 0)
      err = -errno;
  if (err == 0) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    /* The child's ends become its 0-2 (dup2 clears close-on-exec); everything else of ours is
     * close-on-exec already (Node opens its fds so). */
    posix_spawn_file_actions_adddup2(&fa, pipes[0][0], 0);
    posix_spawn_file_actions_adddup2(&fa, pipes[1][1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipes[2][1], 2);
    err = spawn_child(&pid, args[0], &fa, args, 0);
    posix_spawn_file_actions_destroy(&fa);
  }
  for (uint32_t i = 0; i < n; i++)
    free(args[i]);
  free(args);
  /* Ours: the write end of its stdin, the read ends of its stdout and stderr. */
  const int mine[3] = {pipes[0][1], pipes[1][0], pipes[2][0]};
  const int theirs[3] = {pipes[0][0], pipes[1][1], pipes[2][1]};
  for (int i = 0; i < 3; i++) {
    if (theirs[i] >= 0)
      close(theirs[i]);
    if (err != 0 && mine[i] >= 0)
      close(mine[i]);
  }
  if (err != 0) {
    napi_create_int32(env, err, &result);
    return result;
  }
  napi_create_array_with_length(env, 4, &result);
  int32_t out[4] = {pid, mine[0], mine[1], mine[2]};
  for (uint32_t i = 0; i < 4; i++) {
    napi_value v;
    napi_create_int32(env, out[i], &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

/* spawnHelper(path, args, stdio, preserve) -> [pid, channel], or a negative errno.
 * The container's helper, by posix_spawn (see spawnPiped), as child_process would start it with
 * stdio [stdio[0], stdio[1], stdio[2], 'pipe', 3, 4, ...] and `detached`: its fds 0-2 are the
 * given fds (-1: /dev/null), fd 3 its end of a socketpair (ours is `channel`), our fds
 * 3..3+preserve-1 its 4..; a session of its own (setsid). */
static napi_value js_spawn_helper(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  uint32_t nargs = 0;
  int32_t stdio[3], preserve;
  bool is_array = false;
  char path[4096];
  size_t len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4 ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof(path), &len) != napi_ok || len == 0 || len >= sizeof(path) - 1 ||
      strlen(path) != len || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &nargs) != napi_ok || nargs > 64 ||
      napi_get_value_int32(env, argv[3], &preserve) != napi_ok || preserve < 0 || preserve > 1000) {
    napi_throw_type_error(env, NULL, "spawnHelper(path, args, [fd0, fd1, fd2], preserve)");
    return NULL;
  }
  for (uint32_t i = 0; i < 3; i++) {
    napi_value v;
    if (napi_get_element(env, argv[2], i, &v) != napi_ok || napi_get_value_int32(env, v, &stdio[i]) != napi_ok || stdio[i] < -1) {
      napi_throw_type_error(env, NULL, "spawnHelper: stdio is three fds (-1: /dev/null)");
      return NULL;
    }
  }
  char **args = calloc(nargs + 2, sizeof(char *));
  /* Copies of every fd the child gets, above any it could land on, so that no dup2 of the file
   * actions overwrites the source of a later one (fd 1 to 0 and 0 to 1, say). */
  int *src = calloc((size_t)preserve + 4, sizeof(int));
  int err = 0, sv[2] = {-1, -1};
  pid_t pid = -1;
  const int nsrc = preserve + 4;
  if (!args || !src) {
    free(args);
    free(src);
    napi_throw_error(env, NULL, "spawnHelper: out of memory");
    return NULL;
  }
  for (int i = 0; i < nsrc; i++)
    src[i] = -1;
  args[0] = strdup(path);
  if (!args[0])
    err = -ENOMEM;
  if (err == 0)
    err = get_strings(env, argv[1], nargs, args + 1);
  if (err == 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    err = -errno;
  /* The copies: 0-2 the stdio (or none: /dev/null), 3 the child's end, 4.. the preserved. */
  const int above = 3 + preserve + 1;
  for (int i = 0; i < nsrc && err == 0; i++) {
    int from = i < 3 ? stdio[i] : i == 3 ? sv[1] : 3 + (i - 4);
    if (from < 0)
      continue;
    if ((src[i] = fcntl(from, F_DUPFD_CLOEXEC, above)) < 0)
      err = -errno;
  }
  /* Its stdio blocking, as libuv makes a child's 0-2 (a terminal Node put in non-blocking mode
   * would give a shell in the container EAGAIN). The flag is the open file's, shared with us. */
  for (int i = 0; i < 3 && err == 0; i++) {
    int fl = src[i] >= 0 ? fcntl(src[i], F_GETFL) : -1;
    if (fl >= 0 && (fl & O_NONBLOCK))
      fcntl(src[i], F_SETFL, fl & ~O_NONBLOCK);
  }
  if (err == 0) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int i = 0; i < nsrc; i++) {
      if (src[i] >= 0)
        posix_spawn_file_actions_adddup2(&fa, src[i], i);
      else
        posix_spawn_file_actions_addopen(&fa, i, "/dev/null", O_RDWR, 0);
    }
    err = spawn_child(&pid, path, &fa, args, POSIX_SPAWN_SETSID);
    posix_spawn_file_actions_destroy(&fa);
  }
  for (int i = 0; i < nsrc; i++)
    if (src[i] >= 0)
      close(src[i]);
  if (sv[1] >= 0)
    close(sv[1]);
  for (uint32_t i = 0; i < nargs + 1; i++)
    free(args[i]);
  free(args);
  free(src);
  if (err != 0) {
    if (sv[0] >= 0)
      close(sv[0]);
    napi_create_int32(env, err, &result);
    return result;
  }
  napi_value v;
  napi_create_array_with_length(env, 2, &result);
  napi_create_int32(env, pid, &v);
  napi_set_element(env, result, 0, v);
  napi_create_int32(env, sv[0], &v);
  napi_set_element(env, result, 1, v);
  return result;
}

/* waitpid(pid, options) for the napi functions below: the pid argument checked, EINTR retried.
 * Returns waitpid's result (status in *status), or -2 after throwing on a bad argument. */
static pid_t wait_child(napi_env env, napi_callback_info info, int options, const char *usage, int *status) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t pid;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_int32(env, argv[0], &pid) != napi_ok || pid <= 0) {
    napi_throw_type_error(env, NULL, usage);
    return -2;
  }
  pid_t r;
  do {
    r = waitpid(pid, status, options);
  } while (r < 0 && errno == EINTR);
  return r;
}

/* reapIfGone(pid) -> the exit status if the child has ended (reaped now), -1 if it still runs,
 * -2 if it is no child of ours (any more). */
static napi_value js_reap_if_gone(napi_env env, napi_callback_info info) {
  int status = 0;
  napi_value result;
  pid_t r = wait_child(env, info, WNOHANG, "reapIfGone(pid): a positive integer", &status);
  if (r == -2)
    return NULL;
  napi_create_int32(env, r == 0 ? -1 : r < 0 ? -2 : status, &result);
  return result;
}

/* waitExit(pid) -> the exit status as waitpid gives it, or a negative errno. Blocks: call it once
 * the child's stdout and stderr have ended, when it is exiting or gone. */
static napi_value js_wait_exit(napi_env env, napi_callback_info info) {
  int status = 0;
  napi_value result;
  pid_t r = wait_child(env, info, 0, "waitExit(pid): a positive integer", &status);
  if (r == -2)
    return NULL;
  napi_create_int32(env, r < 0 ? -errno : status, &result);
  return result;
}

/* releaseFreedMemory(): glibc's default thresholds again (128 KiB), and malloc_trim(0). */
static napi_value js_release_freed_memory(napi_env env, napi_callback_info info) {
  (void)info;
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  malloc_trim(0);
#endif
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

/*
 * watchChannel(fd, onChunk): reads the socket fd on a thread of its own and hands what comes to
 * onChunk(buffer) on the event loop; at the end onChunk(null, errno) once (0: end of file), and
 * the event loop no longer waits for it. The fd stays the caller's, to write to and to close
 * after the end, not before: the thread may be reading it until then. It is made blocking (the
 * thread waits in read). Main thread only: a worker's teardown would take the threadsafe
 * function from under a thread still reading.
 * shutdownChannel(fd): shutdown(2) both ways, which ends a read in progress: the end follows.
 *
 * This is what net.Socket would do for the helper's channel (src/namespaces/helper.ts), but
 * node:net loads Node's stream modules with it: ~4 ms of every `run` on a VM. A thread rather
 * than libuv's threadpool, where a read that waits as long as a container runs would take one of
 * its four threads.
 */
#define CHANNEL_READ (64 * 1024)

struct chunk {
  ssize_t len; /* > 0: bytes; 0: the end */
  int err;     /* at the end: the errno of the failed read, or 0 */
  char bytes[];
};

struct channel {
  int fd;
  napi_threadsafe_function tsfn;
  struct chunk *end; /* allocated up front, so that the end can always be said */
};

static void channel_call_js(napi_env env, napi_value on_chunk, void *context, void *data) {
  (void)context;
  struct chunk *c = data;
  if (env == NULL) {
    free(c);
    return;
  }
  napi_value argv[2], undefined, ignored, err;
  napi_status made;
  napi_get_undefined(env, &undefined);
  if (c->len > 0)
    made = napi_create_buffer_copy(env, (size_t)c->len, c->bytes, NULL, &argv[0]);
  else
    made = napi_get_null(env, &argv[0]);
  napi_create_int32(env, c->err, &argv[1]);
  free(c);
  if (made != napi_ok) {
    /* Never an end in its place: the caller would close the fd the thread reads. */
    napi_value msg;
    napi_create_string_utf8(env, "watchChannel: cannot make a Buffer", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_fatal_exception(env, err);
    return;
  }
  if (napi_call_function(env, undefined, on_chunk, 2, argv, &ignored) == napi_pending_exception) {
    /* As any callback's: the process's uncaughtException. */
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
}

static void *channel_read(void *arg) {
  struct channel *ch = arg;
  char *buf = malloc(CHANNEL_READ);
  int err = buf ? 0 : ENOMEM;
  while (buf) {
    ssize_t n;
    do {
      n = read(ch->fd, buf, CHANNEL_READ);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      err = n < 0 ? errno : 0;
      break;
    }
    struct chunk *c = malloc(sizeof(struct chunk) + (size_t)n);
    if (!c) {
      err = ENOMEM;
      break;
    }
    c->len = n;
    c->err = 0;
    memcpy(c->bytes, buf, (size_t)n);
    if (napi_call_threadsafe_function(ch->tsfn, c, napi_tsfn_blocking) != napi_ok) {
      /* Closing (the environment goes away): the function is no longer ours to call, nor to
       * release. */
      free(c);
      free(buf);
      free(ch->end);
      free(ch);
      return NULL;
    }
  }
  free(buf);
  ch->end->len = 0;
  ch->end->err = err;
  if (napi_call_threadsafe_function(ch->tsfn, ch->end, napi_tsfn_blocking) == napi_ok)
    napi_release_threadsafe_function(ch->tsfn, napi_tsfn_release);
  else
    free(ch->end);
  free(ch);
  return NULL;
}

static napi_value js_watch_channel(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, result;
  napi_valuetype type = napi_undefined;
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_typeof(env, argv[1], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "watchChannel(fd, onChunk)");
    return NULL;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || ((fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)) {
    napi_create_int32(env, -errno, &result);
    return result;
  }
  struct channel *ch = malloc(sizeof(*ch));
  struct chunk *end = malloc(sizeof(struct chunk));
  if (!ch || !end) {
    free(ch);
    free(end);
    napi_create_int32(env, -ENOMEM, &result);
    return result;
  }
  ch->fd = fd;
  ch->end = end;
  napi_create_string_utf8(env, "tsrun-channel", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, NULL, channel_call_js, &ch->tsfn) != napi_ok) {
    free(end);
    free(ch);
    napi_throw_error(env, NULL, "watchChannel: cannot make a threadsafe function");
    return NULL;
  }
  /* The thread needs little stack (its buffer is on the heap), and takes no signal: they are
   * the main thread's, whose handlers Node set. */
  size_t stack = 64 * 1024;
  long least = sysconf(_SC_THREAD_STACK_MIN);
  if (least > 0 && (size_t)least > stack)
    stack = (size_t)least;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, stack);
  sigset_t all, before;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &before);
  pthread_t thread;
  int err = pthread_create(&thread, &attr, channel_read, ch);
  pthread_sigmask(SIG_SETMASK, &before, NULL);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    napi_release_threadsafe_function(ch->tsfn, napi_tsfn_abort);
    free(end);
    free(ch);
    napi_create_int32(env, -err, &result);
    return result;
  }
  napi_create_int32(env, 0, &result);
  return result;
}

static napi_value js_shutdown_channel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "shutdownChannel(fd)");
    return NULL;
  }
  napi_create_int32(env, shutdown(fd, SHUT_RDWR) == 0 ? 0 : errno, &result);
  return result;
}

/*
 * testBind(protocol, address, port) -> the port bound (the kernel's choice for 0), or a
 * negative errno; -EAFNOSUPPORT: the address is no IPv4 or IPv6 literal (the caller asks Node).
 * Binds and lets go at once, as Node's listen() (tcp: SO_REUSEADDR, bind, listen) or dgram's
 * bind (udp) would: the test that no host process has the port, without loading node:net and
 * node:dgram for it (~5 ms of `run -p` on a VM).
 */
static napi_value js_test_bind(napi_env env, napi_callback_info info) {
  size_t argc = 3, len;
  napi_value argv[3], result;
  char protocol[8], address[INET6_ADDRSTRLEN + 1];
  int32_t port;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 ||
      napi_get_value_string_utf8(env, argv[0], protocol, sizeof(protocol), &len) != napi_ok ||
      (strcmp(protocol, "tcp") != 0 && strcmp(protocol, "udp") != 0) ||
      napi_get_value_string_utf8(env, argv[1], address, sizeof(address), &len) != napi_ok ||
      napi_get_value_int32(env, argv[2], &port) != napi_ok || port < 0 || port > 65535) {
    napi_throw_type_error(env, NULL, "testBind('tcp' | 'udp', address, port)");
    return NULL;
  }
  union {
    struct sockaddr sa;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
  } addr;
  socklen_t addrlen;
  memset(&addr, 0, sizeof(addr));
  if (len < sizeof(address) - 1 && inet_pton(AF_INET, address, &addr.v4.sin_addr) == 1) {
    addr.v4.sin_family = AF_INET;
    addr.v4.sin_port = htons((uint16_t)port);
    addrlen = sizeof(addr.v4);
  } else if (len < sizeof(address) - 1 && inet_pton(AF_INET6, address, &addr.v6.sin6_addr) == 1) {
    addr.v6.sin6_family = AF_INET6;
    addr.v6.sin6_port = htons((uint16_t)port);
    addrlen = sizeof(addr.v6);
  } else {
    napi_create_int32(env, -EAFNOSUPPORT, &result);
    return result;
  }
  const bool tcp = protocol[0] == 't';
  int err = 0, one = 1;
  int fd = socket(addr.sa.sa_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd < 0)
    err = errno;
  else if (tcp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
    err = errno;
  else if (bind(fd, &addr.sa, addrlen) != 0)
    err = errno;
  else if (tcp && listen(fd, 1) != 0)
    err = errno;
  else if (getsockname(fd, &addr.sa, &addrlen) != 0)
    err = errno;
  if (fd >= 0)
    close(fd);
  int bound = addr.sa.sa_family == AF_INET ? ntohs(addr.v4.sin_port) : ntohs(addr.v6.sin6_port);
  napi_create_int32(env, err != 0 ? -err : bound, &result);
  return result;
}

/* Node-API's external one-byte string (Node >= 20.4; declared by node_api.h only under
 * NAPI_VERSION 10): declared weak here, so that on an older Node, which lacks the symbol, the
 * addon still loads, the address is NULL, and mapFile declines. */
extern napi_status node_api_create_external_string_latin1(napi_env env, char *str, size_t length, napi_finalize finalize,
                                                          void *hint, napi_value *result, bool *copied)
    __attribute__((weak));

static void unmap_file(napi_env env, void *data, void *hint) {
  (void)env; /* NULL when Node calls it as the environment goes */
  munmap(data, (size_t)hint);
}

/* The largest file mapFile maps: far above a bundle or a code cache (< 1 MiB), below V8's
 * longest string on any platform (2^28 - 16 characters on 32-bit) and below what makes
 * napi_create_external_buffer refuse a Buffer after it has freed the memory itself. */
#define MAP_FILE_MAX (1 << 27)

/*
 * mapFile(fd, asString) -> the whole file as a one-byte (latin1) string when asString, else as
 * a read-only Buffer (a write to it is a SIGSEGV, not an exception); undefined when it cannot
 * (not a regular file, empty, too large, no such Node-API, mmap failed): the caller then reads
 * the file as usual. The fd stays the caller's, who may close it at once: the mapping holds
 * the file.
 *
 * For the launcher (cli/launcher.ts), which reads a bundle of 0.1-0.8 MB and its code cache on
 * every start. Read, each costs a buffer and, for the source, a string on the V8 heap: fresh
 * pages, a fault per 4 KiB (~15 us each on a VM). Mapped with MAP_POPULATE, the page cache's
 * pages are the string's: one system call, no copy. The mapping is private and read-only, and
 * lives until V8 frees the string or Buffer. A file mapped this way must never be rewritten in
 * place: truncated, its reader dies of SIGBUS at the next read past the end; rewritten, V8's
 * string changes under it. scripts/bundle.mjs and the code cache replace theirs by rename.
 */
static napi_value js_map_file(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  bool as_string;
  napi_value result;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_bool(env, argv[1], &as_string) != napi_ok) {
    napi_throw_type_error(env, NULL, "mapFile(fd, asString): an integer and a boolean");
    return NULL;
  }
  napi_get_undefined(env, &result);
  struct stat st;
  if ((as_string && !node_api_create_external_string_latin1) || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size <= 0 || st.st_size > MAP_FILE_MAX)
    return result;
  size_t size = (size_t)st.st_size;
  void *data = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  if (data == MAP_FAILED)
    return result;
  napi_value mapped;
  bool copied;
  napi_status status = as_string ? node_api_create_external_string_latin1(env, data, size, unmap_file, (void *)size, &mapped, &copied)
                                 : napi_create_external_buffer(env, size, data, unmap_file, (void *)size, &mapped);
  /* A call that failed (no external Buffers in a V8 sandbox, say) has not called unmap_file;
   * one that copied the string has, at once. */
  if (status != napi_ok) {
    munmap(data, size);
    return result;
  }
  return mapped;
}

/*
 * setV8Flags(flags) -> whether V8 took them (false: this Node does not export the function).
 *
 * For src/sys/v8-flags.ts, which sets one V8 flag when a command first connects to a registry.
 * node:v8's setFlagsFromString would do, but loading node:v8 costs 4-7 ms on a 2-core VM; this
 * calls what it calls, v8::V8::SetFlagsFromString, which Node exports for addons written
 * against V8's C++ API, by its Itanium C++ ABI name (a static member function: no `this`, so a
 * plain C call).
 */
static napi_value js_set_v8_flags(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char flags[256];
  size_t len;
  napi_value result;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_string_latin1(env, argv[0], flags, sizeof flags, &len) != napi_ok || len >= sizeof flags - 1) {
    napi_throw_type_error(env, NULL, "setV8Flags(flags): a string of fewer than 255 characters");
    return NULL;
  }
  void (*set_flags)(const char *, size_t);
  /* size_t is unsigned long (m) on 64-bit Linux, unsigned int (j) on 32-bit. */
  *(void **)&set_flags = dlsym(RTLD_DEFAULT, sizeof(size_t) == sizeof(unsigned long) ? "_ZN2v82V818SetFlagsFromStringEPKcm"
                                                                                      : "_ZN2v82V818SetFlagsFromStringEPKcj");
  if (set_flags)
    set_flags(flags, len);
  napi_get_boolean(env, set_flags != NULL, &result);
  return result;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  if (napi_create_function(env, "flock", NAPI_AUTO_LENGTH, js_flock, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "flock", fn) != napi_ok ||
      napi_create_function(env, "umount2", NAPI_AUTO_LENGTH, js_umount2, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "umount2", fn) != napi_ok ||
      napi_create_function(env, "keepFreedMemory", NAPI_AUTO_LENGTH, js_keep_freed_memory, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "keepFreedMemory", fn) != napi_ok ||
      napi_create_function(env, "spawnPiped", NAPI_AUTO_LENGTH, js_spawn_piped, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "spawnPiped", fn) != napi_ok ||
      napi_create_function(env, "waitExit", NAPI_AUTO_LENGTH, js_wait_exit, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "waitExit", fn) != napi_ok ||
      napi_create_function(env, "releaseFreedMemory", NAPI_AUTO_LENGTH, js_release_freed_memory, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "releaseFreedMemory", fn) != napi_ok ||
      napi_create_function(env, "spawnHelper", NAPI_AUTO_LENGTH, js_spawn_helper, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "spawnHelper", fn) != napi_ok ||
      napi_create_function(env, "reapIfGone", NAPI_AUTO_LENGTH, js_reap_if_gone, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "reapIfGone", fn) != napi_ok ||
      napi_create_function(env, "watchChannel", NAPI_AUTO_LENGTH, js_watch_channel, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "watchChannel", fn) != napi_ok ||
      napi_create_function(env, "shutdownChannel", NAPI_AUTO_LENGTH, js_shutdown_channel, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "shutdownChannel", fn) != napi_ok ||
      napi_create_function(env, "testBind", NAPI_AUTO_LENGTH, js_test_bind, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "testBind", fn) != napi_ok ||
      napi_create_function(env, "mapFile", NAPI_AUTO_LENGTH, js_map_file, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "mapFile", fn) != napi_ok ||
      napi_create_function(env, "setV8Flags", NAPI_AUTO_LENGTH, js_set_v8_flags, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "setV8Flags", fn) != napi_ok)
    return NULL;
  return exports;
}
