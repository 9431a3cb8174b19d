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
 *
 * keepFreedMemory is for the commands that stream layers (pull, load, build): by default glibc
 * hands freed memory back to the kernel (buffers above 128 KiB are unmapped when freed, and a
 * heap's free top beyond it is trimmed), and the next buffer then takes a page fault per 4 KiB
 * it touches: on a VM ~15 us each, ~0.2 s of CPU in a 90 MB pull. With these thresholds the
 * process keeps what it freed, up to trimBytes, for its next buffers.
 */
#define NAPI_VERSION 8
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <node_api.h>
#include <sys/file.h>
#include <sys/mount.h>

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

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  if (napi_create_function(env, "flock", NAPI_AUTO_LENGTH, js_flock, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "flock", fn) != napi_ok ||
      napi_create_function(env, "umount2", NAPI_AUTO_LENGTH, js_umount2, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "umount2", fn) != napi_ok ||
      napi_create_function(env, "keepFreedMemory", NAPI_AUTO_LENGTH, js_keep_freed_memory, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "keepFreedMemory", fn) != napi_ok)
    return NULL;
  return exports;
}
