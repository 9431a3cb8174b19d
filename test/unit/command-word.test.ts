// cli/command-word.ts: which bundle a command line needs, before any parsing.
import { expect, it } from 'vitest';
import { commandWord, versionOnly } from '../../cli/command-word.js';

it('finds the command word past the global options and their values', () => {
  expect(commandWord(['ps'])).toBe('ps');
  expect(commandWord(['--root', '/x', 'run', 'busybox'])).toBe('run');
  expect(commandWord(['-D', '--insecure-registry', 'r:5000', 'pull', 'r:5000/a'])).toBe('pull');
  expect(commandWord(['--root', 'ps'])).toBeUndefined();
  expect(commandWord(['--version'])).toBeUndefined();
});

it('answers --version from the smallest bundle only when nothing else is asked', () => {
  for (const args of [['--version'], ['-v'], ['--root', '/x', '--version'], ['-D', '-v'], ['--root=/x', '--insecure-registry=r', '--version']]) {
    expect([args, versionOnly(args)]).toEqual([args, true]);
  }
  for (const args of [[], ['ps'], ['ps', '--version'], ['--version', 'ps'], ['--root', '--version'], ['--insecure-registry', '-v'], ['--help', '--version'], ['-x', '--version']]) {
    expect([args, versionOnly(args)]).toEqual([args, false]);
  }
});
