// `run` and `create` take the same flags through one function (src/container/create-request.ts):
// the same bad flag gives the same error, with the same exit code, before any image is looked
// up — here an image that is not stored and may not be pulled, so a command that looks it up
// first answers "no such image" instead.
import { afterAll, expect, it } from 'vitest';
import { describePrivileged, TestEnv } from './helpers/env.js';

describePrivileged('run and create validate their flags alike', () => {
  const env = new TestEnv('createreq');
  afterAll(() => env.cleanup());

  const bad: [string, string[], RegExp][] = [
    ['an unknown restart policy', ['--restart', 'bogus'], /invalid argument "bogus" for "--restart" flag/],
    ['a restart policy with --rm', ['--restart', 'always', '--rm'], /conflicting options: --restart and --rm/],
    ['a retry count on always', ['--restart', 'always:3'], /for "--restart" flag/],
    ['an unknown log driver', ['--log-driver', 'syslog'], /for "--log-driver" flag/],
    ['a bad log option', ['--log-opt', 'max-file=0'], /max-file must be/],
    ['a relative workdir', ['-w', 'rel'], /for "--workdir" flag/],
    ['a health interval without a unit', ['--health-interval', '10'], /invalid argument "10" for "--health-interval" flag/],
    ['a health timeout under 1ms', ['--health-timeout', '500us'], /for "--health-timeout" flag: cannot be less than 1ms/],
    ['negative health retries', ['--health-retries', '-1'], /for "--health-retries" flag: cannot be negative/],
    ['--no-healthcheck with --health-cmd', ['--no-healthcheck', '--health-cmd', 'true'], /conflicting options: --no-healthcheck and --health-\* options/],
  ];
  for (const [what, flags, error] of bad) {
    it(`${what}: ${flags.join(' ')}`, () => {
      const run = env.run(['run', '--pull', 'never', '--network', 'none', ...flags, 'nosuch/image:1', 'true']);
      const create = env.run(['create', '--pull', 'never', '--network', 'none', ...flags, 'nosuch/image:1', 'true']);
      expect(run.stderr).toMatch(error);
      expect(create.stderr).toBe(run.stderr);
      expect([run.status, create.status]).toEqual([125, 125]);
      expect(env.run(['ps', '-aq']).stdout).toBe('');
    });
  }
});
