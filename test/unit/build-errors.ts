// The message of the EBUILD error a build function throws (parser and expansion tests share it).
import { expect } from 'vitest';

export function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toMatchObject({ code: 'EBUILD' });
    return (err as Error).message;
  }
  throw new Error('no error');
}
