// One error type for everything tsrun reports. `code` is stable (tests and scripts match on it);
// the message says what was being done and to what; `cause` keeps the underlying error.
// Only cli/ turns errors into exit codes and text.

export type ErrorCode =
  | 'EINVAL_FLAG' // a flag value is malformed or out of range
  | 'EINVAL_REF' // an image reference does not parse
  | 'ENOIMAGE' // the image is not in the store (and could not be pulled)
  | 'ENOCONTAINER'
  | 'ENOVOLUME'
  | 'EAMBIGUOUS' // a name or ID prefix that matches more than one object
  | 'EBADIMAGE' // an archive or layout that is not a valid image
  | 'EUNSAFE' // a layer or path that tries to escape its root
  | 'EDIGEST' // content does not match its digest or size
  | 'EREGISTRY' // a registry said no or misbehaved
  | 'EAUTH'
  | 'EINSECURE' // a registry that only speaks HTTP, not declared insecure
  | 'ENETWORK'
  | 'EHELPER' // the native helper failed to start or broke the protocol
  | 'ESTEP' // a launch step failed inside the helper
  | 'ENOTFOUND_EXEC' // 127
  | 'ENOEXEC' // 126
  | 'ESTATE' // an operation not valid in the container's current state
  | 'ELOCK'
  | 'EKERNEL' // a missing kernel feature
  | 'EUSERNS' // no subordinate ids to give a container
  | 'EBUILD' // a Dockerfile, build context or build step that cannot be built
  | 'ESPEC' // an OCI bundle's config.json that is invalid, or asks for what tsrun-runtime does not do
  | 'EINTERNAL';

export class TsrunError extends Error {
  readonly code: ErrorCode;
  /** Exit status the CLI should use (docker's: 125 engine, 126 not executable, 127 not found). */
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TsrunError';
    this.code = code;
    this.exitCode = options.exitCode ?? defaultExitCode(code);
  }
}

function defaultExitCode(code: ErrorCode): number {
  if (code === 'ENOTFOUND_EXEC') return 127;
  if (code === 'ENOEXEC') return 126;
  return 125;
}

/** Node system errors carry `code` ('ENOENT', ...); this reads it without casts everywhere. */
export function errnoOf(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

/** Wrap a lower-level error with what tsrun was doing, keeping a TsrunError's own code. */
export function wrap(code: ErrorCode, doing: string, err: unknown): TsrunError {
  if (err instanceof TsrunError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new TsrunError(code, `${doing}: ${detail}`, { cause: err });
}

/** A bad flag value: docker's wording, and exit status 125. */
export function flagError(flag: string, value: string, why: string): TsrunError {
  return new TsrunError('EINVAL_FLAG', `invalid argument "${value}" for "${flag}" flag: ${why}`);
}

/**
 * The errnos that mean the host refused — its file system is full, read-only or failing, or it
 * ran out of file descriptors — rather than that tsrun has a bug; in strerror's words.
 */
const HOST_LIMITS = new Map([
  ['ENOSPC', 'no space left on device'],
  ['EDQUOT', 'disk quota exceeded'],
  ['EROFS', 'read-only file system'],
  ['EIO', 'input/output error'],
  ['EMFILE', 'too many open files'],
  ['ENFILE', 'too many open files in system'],
]);

/** An error that is the host saying no (a full disk, ...), as one line tells it. */
export interface HostLimit {
  /** What tsrun was doing: the message around the system error, else the system call. */
  doing: string;
  errno: string;
  /** strerror's text: 'no space left on device'. */
  text: string;
  /** The file it was about, when the system error names one. */
  path?: string;
}

/**
 * Finds ENOSPC, EDQUOT, EROFS, EIO, EMFILE or ENFILE in a Node system error, or down the cause
 * chain of an error that wraps one. The outermost message says what was being done; the
 * system error's own text (`ENOSPC: no space left on device, write`) is taken off its end, so
 * that the line says the errno once.
 */
export function hostLimitOf(err: unknown): HostLimit | undefined {
  let sys: (Error & { syscall?: unknown; path?: unknown }) | undefined;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 16; e = e.cause, depth++) {
    // A TsrunError's code is tsrun's own, never an errno.
    if (!(e instanceof TsrunError) && HOST_LIMITS.has(errnoOf(e) ?? '')) {
      sys = e;
      break;
    }
  }
  if (!sys) return undefined;
  const errno = errnoOf(sys)!;
  let doing = typeof sys.syscall === 'string' ? sys.syscall : 'file system';
  if (sys !== err) {
    const message = (err as Error).message;
    const own = `: ${sys.message}`;
    doing = message.endsWith(own) ? message.slice(0, -own.length) : message;
  }
  return { doing, errno, text: HOST_LIMITS.get(errno)!, ...(typeof sys.path === 'string' && { path: sys.path }) };
}
