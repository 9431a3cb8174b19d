// docker inspect's HostConfig.SecurityOpt entry for seccomp: apart from index.ts, so that
// inspect does not load the profiles and the compiler for it.
import type { SeccompOption } from './types.js';

export function seccompSecurityOpt(option: SeccompOption | undefined): string[] {
  if (option?.mode === 'unconfined') return ['seccomp=unconfined'];
  if (option?.mode === 'profile') return [`seccomp=${option.path}`];
  return [];
}
