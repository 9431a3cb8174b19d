// Where a container's files live under the store root (DESIGN.md "Images and storage"):
//   containers/<id>/  container.json config.json state.json status ctr.log lock attach.sock
//                     upper/ work/ rootfs/ hostname hosts resolv.conf stop-requested exec.plan
//   names/<name> -> ../containers/<id>   (a symlink: creating it is the atomic name reservation)
import { join } from 'node:path';

export class ContainerPaths {
  readonly dir: string;

  constructor(
    readonly storeRoot: string,
    readonly id: string,
  ) {
    // Normalized once here; the files below are appended to it (ps reads five of them per
    // container, and path.join's normalizing showed up in its profile).
    this.dir = join(storeRoot, 'containers', id);
  }

  /** What the container was created with (record.ts). */
  get record(): string {
    return `${this.dir}/container.json`;
  }
  /** Written by the monitor (native/README.md): running, pid, exit code, restart count. */
  get status(): string {
    return `${this.dir}/status`;
  }
  /** docker's json-file log: one JSON object per line of output. */
  get log(): string {
    return `${this.dir}/ctr.log`;
  }
  /** Present when `stop` or `rm -f` asked the container to stop: its monitor must not restart
   * it. It names the tsrun that asked (pid@start time), which cleans up while it lives. */
  get stopFile(): string {
    return `${this.dir}/stop-requested`;
  }
  /**
   * With a TTY, a detached container's monitor serves its PTY here (native/attach.c), for
   * `tsrun attach`. Longer than a unix socket address may be (108 bytes) under a deep store root:
   * the monitor binds it from inside this directory, clients connect through /proc/self/fd.
   */
  get attachSocket(): string {
    return `${this.dir}/attach.sock`;
  }
  /** flock'ed by every command that changes the container. */
  get lock(): string {
    return `${this.dir}/lock`;
  }
  /** Present while `create` makes the container (create.ts CreatingMarker). */
  get creating(): string {
    return `${this.dir}/creating`;
  }
  get config(): string {
    return `${this.dir}/config.json`;
  }
  /** The plan of a plain `exec` into this container, for tsrun's native front (exec.ts, native/front/). */
  get execPlan(): string {
    return `${this.dir}/exec.plan`;
  }
  get state(): string {
    return `${this.dir}/state.json`;
  }
  get rootfs(): string {
    return `${this.dir}/rootfs`;
  }
  /** Overlay upper and work dirs, relative to the store root (keeps mount options short). */
  get upperRel(): string {
    return join('containers', this.id, 'upper');
  }
  get workRel(): string {
    return join('containers', this.id, 'work');
  }
  get hostname(): string {
    return `${this.dir}/hostname`;
  }
  get hosts(): string {
    return `${this.dir}/hosts`;
  }
  get resolvConf(): string {
    return `${this.dir}/resolv.conf`;
  }
}

export function namesDir(storeRoot: string): string {
  return join(storeRoot, 'names');
}
