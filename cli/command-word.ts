// Which command a tsrun command line runs, before any parsing: the first argument that is not a
// global option or its value. main.ts loads only that command's module; the launcher keeps one
// code cache per command.

const GLOBAL_WITH_VALUE = new Set(['--root', '--insecure-registry']);

export function commandWord(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (GLOBAL_WITH_VALUE.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/** `tsrun --version` (or -v), alone or after global options: what the smallest bundle answers. */
export function versionOnly(args: string[]): boolean {
  let version = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (GLOBAL_WITH_VALUE.has(a)) i++;
    else if (a === '--version' || a === '-v') version = true;
    else if (a !== '-D' && a !== '--debug' && !/^--(root|insecure-registry)=/.test(a)) return false;
  }
  return version;
}
