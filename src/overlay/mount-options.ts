// The overlay mount's option string (mount(2)'s `data`): which directories overlayfs stacks.
// No imports on purpose: the runtime half's launch plan (namespaces/plan.ts) builds it too.

export interface OverlayDirs {
  /** Lower directories, TOP layer first (overlayfs's order). */
  lowers: string[];
  /**
   * The writable layer and overlayfs's work directory (an empty directory on the same file
   * system). None: a read-only view of the lowers (`ro`, nothing to write into).
   */
  upper?: { dir: string; work: string };
  /**
   * overlayfs keeps its whiteout and opaque attributes in user.overlay.* instead of
   * trusted.overlay.*: a mount made outside the host's user namespace (rootless), where
   * trusted.* is not writable.
   */
  userxattr?: boolean;
}

/**
 * `lowerdir=A:B,upperdir=U,workdir=W`, or `ro,lowerdir=A:B` without an upper.
 *
 * The kernel reads at most one page (4096 bytes) of options, so the paths are kept short: the
 * store gives each layer a 26-character link `l/<id>` and the mount is made from the store root
 * with paths relative to it (image/layers.ts, the trick containers/storage uses), about 29 bytes
 * a layer, so well over a hundred layers fit. Absolute `layers/<64 hex>/diff` paths would stop
 * at about 40. The paths must not contain `,` or `:` (overlayfs's separators): tsrun's never do.
 */
export function mountOptions(dirs: OverlayDirs): string {
  const options = dirs.upper
    ? [`lowerdir=${dirs.lowers.join(':')}`, `upperdir=${dirs.upper.dir}`, `workdir=${dirs.upper.work}`]
    : ['ro', `lowerdir=${dirs.lowers.join(':')}`];
  if (dirs.userxattr) options.push('userxattr');
  return options.join(',');
}
