// The monitor's status file (native/status.c): padded to 1024 bytes and checksummed, so that a
// reader can tell a whole file from one the monitor is overwriting in place on a full disk.
import { describe, expect, it } from 'vitest';
import { checksumOk } from '../../src/container/record.js';

// Written by the monitor of a real container (native/build/tsrun-helper).
const lines = [
  'status=running', 'pid=20420', 'monitor_pid=20419', 'monitor_start_time=3095898', 'exit_code=', 'exit_signal=',
  'started_at=2026-12-06T18:38:10.674019913Z', 'finished_at=', 'restart_count=0', 'error=', 'checksum=574d1479',
];
const whole = (text: string) => Buffer.concat([Buffer.from(text), Buffer.alloc(1024 - text.length, '\n')]);

describe('status file checksum', () => {
  it('accepts the file as the monitor wrote it', () => {
    expect(checksumOk(whole(lines.join('\n') + '\n'))).toBe(true);
  });

  it('refuses a file caught half-overwritten (one field of the new content, the rest old)', () => {
    const mixed = lines.join('\n').replace('status=running', 'status=exited\n').replace('pid=20420', 'pid=0');
    expect(checksumOk(whole(mixed + '\n'))).toBe(false);
    expect(checksumOk(whole(lines.join('\n').replace('574d1479', '574d147a') + '\n'))).toBe(false);
  });

  it('accepts a file without a checksum (written by an older monitor)', () => {
    expect(checksumOk(Buffer.from(lines.slice(0, -1).join('\n') + '\n'))).toBe(true);
  });
});
