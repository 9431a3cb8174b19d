// docker-style pull/push progress: sizes, bars, redraw in place on a TTY, plain lines otherwise.
import { describe, expect, it } from 'vitest';
import { ProgressView, humanSize } from '../../cli/pull.js';

function sink(): { out: NodeJS.WriteStream; text: () => string } {
  let s = '';
  const out = { write: (c: string) => ((s += c), true), isTTY: false } as unknown as NodeJS.WriteStream;
  return { out, text: () => s };
}

describe('progress', () => {
  it('formats sizes as docker does', () => {
    expect(humanSize(0)).toBe('0B');
    expect(humanSize(999)).toBe('999B');
    expect(humanSize(2_220_000)).toBe('2.22MB');
    expect(humanSize(1_500)).toBe('1.5kB');
    expect(humanSize(3_000_000_000)).toBe('3GB');
  });

  it('prints one plain line per status change when not on a terminal', () => {
    const s = sink();
    const v = new ProgressView(s.out, false, false);
    v.update({ id: 'aaa', status: 'Waiting' });
    v.update({ id: 'aaa', status: 'Downloading', current: 10, total: 100 });
    v.update({ id: 'aaa', status: 'Downloading', current: 50, total: 100 });
    v.update({ id: 'aaa', status: 'Pull complete' });
    v.update({ id: 'bbb', status: 'Mounted', detail: 'team/app' });
    expect(s.text()).toBe('aaa: Waiting\naaa: Downloading\naaa: Pull complete\nbbb: Mounted from team/app\n');
  });

  it('redraws the block in place on a terminal', () => {
    const s = sink();
    const v = new ProgressView(s.out, false, true);
    v.update({ id: 'aaa', status: 'Downloading', current: 0, total: 100 });
    v.update({ id: 'bbb', status: 'Already exists' });
    v.update({ id: 'aaa', status: 'Pull complete' });
    v.finish();
    const text = s.text();
    expect(text).toContain('\x1b[2A'); // back over both lines
    expect(text).toContain('aaa: Downloading [>');
    expect(text).toMatch(/\]  0B\/100B/);
    expect(text.endsWith('\x1b[2K\raaa: Pull complete\n\x1b[2K\rbbb: Already exists\n')).toBe(true);
  });

  it('prints nothing with -q', () => {
    const s = sink();
    const v = new ProgressView(s.out, true, true);
    v.update({ id: 'aaa', status: 'Waiting' });
    v.say('Digest: x');
    v.finish();
    expect(s.text()).toBe('');
  });
});
