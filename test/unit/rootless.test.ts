import { describe, expect, it } from 'vitest';
import { rootlessPaths } from '../../src/rootless.js';
import { subordinateRange } from '../../src/namespaces/userns.js';

describe('rootless tsrun', () => {
  it('reads the first range of a user, by name or by uid, as shadow-utils does', () => {
    const text = 'alice:100000:65536\n1001:300000:1000\nbob:0:0\nbob:400000:65536\n';
    expect(subordinateRange(text, 'alice', 1000)).toEqual({ start: 100000, size: 65536 });
    expect(subordinateRange(text, 'carol', 1001)).toEqual({ start: 300000, size: 1000 });
    expect(subordinateRange(text, 'bob', 1002)).toEqual({ start: 400000, size: 65536 }); // an empty range does not count
    expect(subordinateRange(text, 'dave', 1003)).toBeUndefined();
  });

  it('keeps a user\'s store under XDG_DATA_HOME, else ~/.local/share', () => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, { XDG_DATA_HOME: '/home/u/data', XDG_RUNTIME_DIR: '/run/user/1000', HOME: '/home/u' });
      expect(rootlessPaths()).toEqual({ root: '/home/u/data/tsrun' });
      delete process.env.XDG_DATA_HOME;
      delete process.env.XDG_RUNTIME_DIR;
      process.env.TSRUN_USERNS = '1000';
      expect(rootlessPaths()).toEqual({ root: '/home/u/.local/share/tsrun' });
    } finally {
      process.env = saved;
    }
  });
});
