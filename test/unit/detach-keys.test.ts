// The client half of `tsrun attach` that needs no container: docker's --detach-keys format, the
// matcher that watches typed bytes for the sequence, and the attach socket's framing.
import { describe, expect, it } from 'vitest';
import { DetachKeys, FrameReader, encodeFrame, parseDetachKeys, windowFrame } from '../../src/container/attach.js';

const bytes = (spec: string | undefined) => [...parseDetachKeys(spec)];

describe('parseDetachKeys (docker\'s format)', () => {
  it('defaults to ctrl-p,ctrl-q', () => {
    expect(bytes(undefined)).toEqual([0x10, 0x11]);
    expect(bytes('ctrl-p,ctrl-q')).toEqual([0x10, 0x11]);
  });

  it('reads ctrl- keys, DEL and single characters', () => {
    expect(bytes('ctrl-a,x')).toEqual([1, 0x78]);
    expect(bytes('ctrl-@')).toEqual([0]);
    expect(bytes('ctrl-z')).toEqual([26]);
    expect(bytes('ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_')).toEqual([27, 28, 29, 30, 31]);
    expect(bytes('DEL')).toEqual([0x7f]);
    expect(bytes('a,b,c')).toEqual([0x61, 0x62, 0x63]);
  });

  it('turns detaching off with the empty string', () => {
    expect(bytes('')).toEqual([]);
  });

  it('refuses what docker refuses, naming the flag and the key', () => {
    for (const [spec, key] of [['ctrl-P', 'ctrl-P'], ['ctrl-ab', 'ctrl-ab'], ['foo', 'foo'], ['ctrl-p,,x', ''], ['é', 'é'], ['ctrl-1', 'ctrl-1'], ['del', 'del']]) {
      expect(() => parseDetachKeys(spec), spec).toThrow(`invalid argument "${spec}" for "--detach-keys" flag: unknown key "${key}"`);
    }
  });
});

describe('DetachKeys', () => {
  const feed = (keys: DetachKeys, ...chunks: string[]) =>
    chunks.map((c) => {
      const r = keys.feed(Buffer.from(c, 'latin1'));
      return [r.forward.toString('latin1'), r.detach] as const;
    });

  it('detaches on the whole sequence, passing on what came before it and nothing of it', () => {
    expect(feed(new DetachKeys(parseDetachKeys(undefined)), 'ls\r\x10\x11after')).toEqual([['ls\r', true]]);
  });

  it('matches however the sequence is split into reads, holding its start back meanwhile', () => {
    expect(feed(new DetachKeys(parseDetachKeys(undefined)), 'ab\x10', '\x11')).toEqual([['ab', false], ['', true]]);
    expect(feed(new DetachKeys(parseDetachKeys('ctrl-a,b,c')), '\x01', 'b', 'c')).toEqual([['', false], ['', false], ['', true]]);
  });

  it('passes on a false start, late, with the byte that ended it', () => {
    const keys = new DetachKeys(parseDetachKeys(undefined));
    expect(feed(keys, '\x10', 'x', '\x10\x10', '\x11')).toEqual([['', false], ['\x10x', false], ['\x10', false], ['', true]]);
  });

  it('lets the second key through alone, and a one-key sequence detach at once', () => {
    expect(feed(new DetachKeys(parseDetachKeys('ctrl-a,x')), 'echo x-marks\r')).toEqual([['echo x-marks\r', false]]);
    expect(feed(new DetachKeys(parseDetachKeys('ctrl-]')), 'abc\x1ddef')).toEqual([['abc', true]]);
  });

  it('gives back what it held when the input ends', () => {
    const keys = new DetachKeys(parseDetachKeys(undefined));
    expect(feed(keys, 'x\x10')).toEqual([['x', false]]);
    expect(keys.flush().toString('latin1')).toBe('\x10');
    expect(keys.flush().length).toBe(0);
  });

  it('passes everything on when detaching is off', () => {
    expect(feed(new DetachKeys(parseDetachKeys('')), '\x10\x11')).toEqual([['\x10\x11', false]]);
  });
});

describe('attach socket frames', () => {
  it('are a type byte, a big-endian u16 length and the payload', () => {
    expect([...encodeFrame('i', Buffer.from('ls\r'))]).toEqual([0x69, 0, 3, 0x6c, 0x73, 0x0d]);
    expect([...windowFrame(40, 300)]).toEqual([0x77, 0, 4, 0, 40, 1, 44]);
    expect([...encodeFrame('r')]).toEqual([0x72, 0, 0]);
    expect(() => encodeFrame('o', Buffer.alloc(0x10000))).toThrow();
  });

  it('are read back whole, however the stream is cut', () => {
    const stream = Buffer.concat([encodeFrame('r', Buffer.from('1')), encodeFrame('o', Buffer.alloc(300, 0x61)), encodeFrame('x', Buffer.from('3 0'))]);
    for (const cut of [1, 2, 3, 4, 100, 303, stream.length]) {
      const reader = new FrameReader();
      const frames = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
      expect(frames.map((f) => [f.type, f.payload.length]), `cut at ${cut}`).toEqual([['r', 1], ['o', 300], ['x', 3]]);
      expect(frames[2]!.payload.toString()).toBe('3 0');
    }
  });
});
