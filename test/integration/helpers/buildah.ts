// Debian's buildah (and podman) as reference implementations for tests: each with its own
// storage under a test's temp dir, so nothing touches the host's /var/lib/containers, and
// everything they made is removed (and checked gone) afterwards.
//
// Why these flags, on this kind of host (a VM with a hybrid cgroup v1/v2 layout):
//   --storage-driver vfs  each layer is a plain directory with the whole tree: mounting an
//                         image mounts nothing, and no overlay mount can outlive a test
//   --isolation chroot    buildah's RUN without an OCI runtime: crun 1.8 refuses hybrid
//                         cgroups ("cgroups in hybrid mode not supported")
//   --format docker       keeps HEALTHCHECK, ONBUILD, SHELL and MAINTAINER (OCI drops them)
//   --tmpdir (podman)     else podman keeps its state in the host's /run/libpod
//   podman --runtime runc and --ulimit nofile/nproc: crun refuses the cgroup layout, and
//                         podman's default rlimits (nproc 1048576) are more than runc may set here
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

async function runTool(cmd: string, args: string[], timeout = 120_000, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  try {
    const { stdout, stderr } = await exec(cmd, args, { timeout, maxBuffer: 64 << 20, encoding: 'utf8', ...(env && { env: { ...process.env, ...env } }) });
    return { status: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw new Error(`${cmd} ${args.join(' ')}: ${e.message}`);
    return { status: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await runTool(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** The image config as docker's schema2 config holds it (what `docker inspect` shows as Config). */
export interface DockerConfig {
  Env?: string[] | null;
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, object> | null;
  Labels?: Record<string, string> | null;
  Volumes?: Record<string, object> | null;
  StopSignal?: string;
  Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number } | null;
  OnBuild?: string[] | null;
  Shell?: string[] | null;
}

export interface BudOptions {
  tag: string;
  /** A Dockerfile other than CONTEXT/Dockerfile. */
  file?: string;
  buildArgs?: Record<string, string>;
}

/** Lines of /proc/self/mountinfo that mention `dir`: what must be gone after a cleanup. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(dir));
}

/** Processes whose command line mentions `marker` (conmon, a `podman container cleanup`...). */
export function processesMentioning(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
      if (cmdline.includes(marker) && state !== 'Z') found.push(`${pid}: ${cmdline.slice(0, 160)}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function waitForNoProcesses(marker: string, ms = 10_000): Promise<string[]> {
  let left = processesMentioning(marker);
  for (const deadline = Date.now() + ms; left.length > 0 && Date.now() < deadline; left = processesMentioning(marker)) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return left;
}

export class Buildah {
  readonly dir: string;
  /** podman refuses a runroot longer than 50 characters: a short one of its own, whatever TMPDIR is. */
  readonly runDir = mkdtempSync('/tmp/br-');

  constructor(parent: string) {
    this.dir = mkdtempSync(join(parent, 'buildah-'));
  }

  private get global(): string[] {
    return ['--root', join(this.dir, 'root'), '--runroot', this.runDir, '--storage-driver', 'vfs'];
  }

  run(args: string[], timeout?: number): Promise<RunResult> {
    return runTool('buildah', [...this.global, ...args], timeout);
  }

  bud(context: string, o: BudOptions): Promise<RunResult> {
    const args = ['bud', '--format', 'docker', '--isolation', 'chroot', '--tls-verify=false', '--layers=false', '-t', o.tag];
    if (o.file) args.push('-f', o.file);
    for (const [k, v] of Object.entries(o.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
    return this.run([...args, context]);
  }

  async tag(image: string, name: string): Promise<void> {
    await must('buildah', [...this.global, 'tag', image, name]);
  }

  async pull(ref: string): Promise<void> {
    await must('buildah', [...this.global, 'pull', '--quiet', '--tls-verify=false', ref]);
  }

  async images(): Promise<string[]> {
    return (await must('buildah', [...this.global, 'images', '--noheading', '--format', '{{.Name}}:{{.Tag}}'])).split('\n').filter(Boolean);
  }

  /** The docker schema2 config of an image: `config` (Env, Cmd...) and `author`. */
  async inspect(image: string): Promise<{ config: DockerConfig; author: string }> {
    const j = JSON.parse(await must('buildah', [...this.global, 'inspect', '--type', 'image', image]));
    return { config: j.Docker.config ?? {}, author: j.Docker.author ?? '' };
  }

  /**
   * Calls `fn` with the image's merged root file system. Through `podman image mount` on the
   * same storage, not `buildah from` + `buildah mount`: `buildah from` runs an image's ONBUILD
   * triggers. With vfs the "mount" is the top layer's directory, a full copy of the tree.
   */
  async withRootfs<T>(image: string, fn: (dir: string) => T | Promise<T>): Promise<T> {
    const podman = ['--root', join(this.dir, 'root'), '--runroot', this.runDir, '--tmpdir', join(this.dir, 'podman-tmp'), '--storage-driver', 'vfs', '--events-backend', 'none'];
    const mnt = (await must('podman', [...podman, 'image', 'mount', image])).trim();
    try {
      if (!mnt.startsWith(this.dir)) throw new Error(`podman image mount ${image} gave ${mnt}, not a dir under ${this.dir}`);
      return await fn(mnt);
    } finally {
      await must('podman', [...podman, 'image', 'unmount', image]);
    }
  }

  /** Removes every container and image, then the storage; returns what could not be removed. */
  async cleanup(): Promise<string[]> {
    const problems: string[] = [];
    for (const args of [['rm', '--all'], ['rmi', '--all', '--force']]) {
      const r = await this.run(args);
      // rmi --all with no images left exits 0 or says so; anything else is worth a look.
      if (r.status !== 0 && !/no images/i.test(r.stderr)) problems.push(`buildah ${args.join(' ')}: ${r.stderr.trim()}`);
    }
    problems.push(...(await waitForNoProcesses(this.dir)).map((p) => `process: ${p}`));
    for (const m of [...mountsUnder(this.dir), ...mountsUnder(this.runDir)].reverse()) {
      const mountPoint = m.split(' ')[4]!;
      try {
        execFileSync('umount', [mountPoint]);
      } catch {
        // reported below if it stays
      }
      problems.push(`mount left by buildah: ${m}`);
    }
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.runDir, { recursive: true, force: true });
    return problems;
  }
}

/**
 * podman with private storage and a private cgroup parent (`--cgroup-parent`), removed by
 * cleanup(). `runtime`: the OCI runtime's path (runc by default; tsrun-runtime's tests give
 * theirs, and `env` then carries a containers.conf that lets podman pass it --log).
 */
export class Podman {
  readonly dir: string;
  readonly cgroupParent: string;
  /** podman refuses a runroot longer than 50 characters. */
  readonly runDir = mkdtempSync('/tmp/pr-');

  constructor(
    parent: string,
    cgroupParent: string,
    private readonly runtime = 'runc',
    private readonly env?: NodeJS.ProcessEnv,
  ) {
    this.dir = mkdtempSync(join(parent, 'podman-'));
    this.cgroupParent = cgroupParent;
  }

  private get global(): string[] {
    return [
      '--root', join(this.dir, 'root'),
      '--runroot', this.runDir,
      '--tmpdir', join(this.dir, 'tmp'),
      '--storage-driver', 'vfs',
      '--cgroup-manager', 'cgroupfs',
      '--runtime', this.runtime,
      '--events-backend', 'none',
    ];
  }

  /** The command line of `podman ARGS` with this instance's storage (for a pty driver). */
  argv(args: string[]): string[] {
    return ['podman', ...this.global, ...args];
  }

  run(args: string[], timeout?: number): Promise<RunResult> {
    return runTool('podman', [...this.global, ...args], timeout, this.env);
  }

  /** `podman run --rm [FLAGS] IMAGE COMMAND` of an image from an insecure registry, without network. */
  runImage(image: string, command: string[], flags: string[] = []): Promise<RunResult> {
    return this.run([
      'run', '--rm', '--tls-verify=false', '--network', 'none', `--cgroup-parent=/${this.cgroupParent}`,
      '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=1024:1024',
      ...flags, image, ...command,
    ]);
  }

  async cleanup(): Promise<string[]> {
    const problems: string[] = [];
    const r = await this.run(['rm', '--all', '--force']);
    if (r.status !== 0) problems.push(`podman rm: ${r.stderr.trim()}`);
    // --rm hands the container's removal to conmon's exit command (`podman container cleanup`):
    // it may still be running.
    problems.push(...(await waitForNoProcesses(this.dir)).map((p) => `process: ${p}`));
    const reset = await this.run(['system', 'reset', '--force']);
    if (reset.status !== 0) problems.push(`podman system reset: ${reset.stderr.trim()}`);
    for (const m of mountsUnder(this.dir)) problems.push(`mount left by podman: ${m}`);
    // runc removes the container's cgroups; the parent (and conmon's, beside them) are ours.
    for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
      const top = join('/sys/fs/cgroup', hierarchy, this.cgroupParent);
      if (!existsSync(top)) continue;
      const dirs = execFileSync('find', [top, '-depth', '-type', 'd'], { encoding: 'utf8' });
      for (const d of dirs.split('\n').filter(Boolean)) {
        try {
          rmdirSync(d);
        } catch (err) {
          problems.push(`cgroup ${d}: ${(err as Error).message}`);
        }
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
    rmSync(this.runDir, { recursive: true, force: true });
    return problems;
  }
}
