// parseCreateFlags: run's and create's flags → options, restart policy and log config, checked
// in one order (the process's flags, then --restart, then the log's).
import { describe, expect, it } from 'vitest';
import { parseCreateFlags, type CreateFlagValues } from '../../src/container/create-request.js';

const host = { readFile: () => '', env: {}, stdinIsTty: false };
const flags = (more: Partial<CreateFlagValues>): CreateFlagValues => ({ pid: '', ipc: '', uts: '', restart: 'no', network: 'none', ...more });

describe('parseCreateFlags', () => {
  it('parses the options, the restart policy and the log config together', () => {
    const r = parseCreateFlags(flags({ restart: 'on-failure:2', logOpt: ['max-file=5'], rm: false }), ['sh'], host);
    expect(r.restartPolicy).toEqual({ name: 'on-failure', maximumRetryCount: 2 });
    expect(r.logConfig.maxFile).toBe(5);
    expect(r.options.args).toEqual(['sh']);
  });

  it('takes --net as --network', () => {
    expect(parseCreateFlags(flags({ network: undefined, net: 'none' }), [], host).options.network).toBe('none');
  });

  it('checks in one order: the process flags, --restart (with --rm), the log', () => {
    expect(() => parseCreateFlags(flags({ workdir: 'rel', restart: 'bogus', logDriver: 'syslog' }), [], host)).toThrow(/--workdir/);
    expect(() => parseCreateFlags(flags({ restart: 'bogus', logDriver: 'syslog' }), [], host)).toThrow(/--restart/);
    expect(() => parseCreateFlags(flags({ restart: 'always', rm: true, logDriver: 'syslog' }), [], host)).toThrow(/--rm/);
    expect(() => parseCreateFlags(flags({ logDriver: 'syslog' }), [], host)).toThrow(/--log-driver/);
  });
});
