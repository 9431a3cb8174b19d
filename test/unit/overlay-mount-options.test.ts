// The overlay mount's option string: the same for the launch plan (run) and for export's and
// cp's private mount of a stopped container.
import { describe, expect, it } from 'vitest';
import { mountOptions } from '../../src/overlay/index.js';

describe('mountOptions', () => {
  it('stacks the lowers top first under the upper and work dirs', () => {
    expect(mountOptions({ lowers: ['l/TOP', 'l/MID', 'l/BOTTOM'], upper: { dir: 'containers/c/upper', work: 'containers/c/work' } })).toBe(
      'lowerdir=l/TOP:l/MID:l/BOTTOM,upperdir=containers/c/upper,workdir=containers/c/work',
    );
  });

  it('makes one lower layer a valid stack too', () => {
    expect(mountOptions({ lowers: ['l/ONLY'], upper: { dir: 'u', work: 'w' } })).toBe('lowerdir=l/ONLY,upperdir=u,workdir=w');
  });

  it('mounts read-only without an upper dir', () => {
    expect(mountOptions({ lowers: ['containers/c/upper', 'l/A', 'l/B'] })).toBe('ro,lowerdir=containers/c/upper:l/A:l/B');
  });

  it('asks for user.overlay.* attributes in a user namespace', () => {
    expect(mountOptions({ lowers: ['l/A'], upper: { dir: 'u', work: 'w' }, userxattr: true })).toBe('lowerdir=l/A,upperdir=u,workdir=w,userxattr');
    expect(mountOptions({ lowers: ['u', 'l/A'], userxattr: true })).toBe('ro,lowerdir=u:l/A,userxattr');
  });

  it('keeps a hundred layers of short store links under a page', () => {
    const lowers = Array.from({ length: 120 }, (_, i) => `l/${String(i).padStart(26, 'A')}`);
    const data = mountOptions({ lowers, upper: { dir: `containers/${'f'.repeat(64)}/upper`, work: `containers/${'f'.repeat(64)}/work` } });
    expect(data.split(',')[0]!.split(':')).toHaveLength(120);
    expect(data.length).toBeLessThan(4096);
  });
});
