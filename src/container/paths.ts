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
    this.dir = join(storeRoot, 'containers', id);
  }

  /** What the container was created with (record.ts). */
  get record(): string {
    return join(this.dir, 'container.json');
  }
  /** Written by the monitor (native/README.md): running, pid, exit code, restart count. */
  get status(): string {
    return join(this.dir, 'status');
  }
  /** docker's json-file log: one JSON object per line of output. */
  get log(): string {
    return join(this.dir, 'ctr.log');
  }
  /** Present when `stop` or `rm -f` asked the container to stop: its monitor must not restart
   * it. It names the tsrun that asked (pid@start time), which cleans up while it lives. */
  get stopFile(): string {
    return join(this.dir, 'stop-requested');
  }
  /**
   * With a TTY, a detached container's monitor serves its PTY here (native/attach.c), for
   * `tsrun attach`. Longer than a unix socket address may be (108 bytes) under a deep store root:
   * the monitor binds it from inside this directory, clients connect through /proc/self/fd.
   */
  get attachSocket(): string {
    return join(this.dir, 'attach.sock');
  }
  /** flock'ed by every command that changes the container. */
  get lock(): string {
    return join(this.dir, 'lock');
  }
  /** Present while `create` makes the container (create.ts CreatingMarker). */
  get creating(): string {
    return join(this.dir, 'creating');
  }
  get config(): string {
    return join(this.dir, 'config.json');
  }
  /** The plan of a plain `exec` into this container, for tsrun's native front (exec.ts, native/front/). */
  get execPlan(): string {
    return join(this.dir, 'exec.plan');
  }
  get state(): string {
    return join(this.dir, 'state.json');
  }
  get rootfs(): string {
    return join(this.dir, 'rootfs');
  }
  /** Overlay upper and work dirs, relative to the store root (keeps mount options short). */
  get upperRel(): string {
    return join('containers', this.id, 'upper');
  }
  get workRel(): string {
    return join('containers', this.id, 'work');
  }
  get hostname(): string {
    return join(this.dir, 'hostname');
  }
  get hosts(): string {
    return join(this.dir, 'hosts');
  }
  get resolvConf(): string {
    return join(this.dir, 'resolv.conf');
  }
}

export function namesDir(storeRoot: string): string {
  return join(storeRoot, 'names');
}
