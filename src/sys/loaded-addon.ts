// The addon the launcher loads before it runs a bundle (cli/launcher.ts), handed to
// src/sys/libc.ts under a registered symbol: the bundle then neither looks for it nor loads it
// again. A module of its own, so that the launcher's bundle holds this line and not libc.ts.
export const LOADED_ADDON = Symbol.for('tsrun.sys-addon');
