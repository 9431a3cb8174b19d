// What build's metadata instructions do to an image config, the history lines they leave, and
// how RUN turns shell form, exec form and heredocs into an argv (pure functions, no root).
import { describe, expect, it } from 'vitest';
import { runArgv } from '../../src/build/builder.js';
import { applyMetadata, argvOf, createdBy, setEnv, workdirOf } from '../../src/build/image-config.js';
import type { Instruction } from '../../src/build/instructions.js';

const run = (shell: string, heredocs: Array<{ name: string; body: string }> = []): Extract<Instruction, { kind: 'RUN' }> => ({
  kind: 'RUN',
  command: { shell },
  heredocs: heredocs.map((h) => ({ ...h, quoted: false })),
});

describe('image config changes', () => {
  it('ENV keeps an existing key in its place and appends new ones', () => {
    expect(setEnv(['PATH=/bin', 'A=1'], [['A', '2'], ['B', '3']])).toEqual(['PATH=/bin', 'A=2', 'B=3']);
    expect(applyMetadata({ Env: ['A=1'] }, { kind: 'ENV', pairs: [['A', 'x y']] }).Env).toEqual(['A=x y']);
  });

  it('WORKDIR is relative to the one before, and clean', () => {
    expect(workdirOf({}, 'app')).toBe('/app');
    expect(workdirOf({ WorkingDir: '/srv' }, 'a/../b/')).toBe('/srv/b');
    expect(workdirOf({ WorkingDir: '/srv' }, '/abs')).toBe('/abs');
  });

  it('CMD and ENTRYPOINT: shell form through SHELL, exec form as is; ENTRYPOINT clears an inherited CMD', () => {
    const shell = { Shell: ['/bin/bash', '-ec'] };
    expect(argvOf({ shell: 'make test' }, shell)).toEqual(['/bin/bash', '-ec', 'make test']);
    expect(argvOf({ shell: 'make test' }, {})).toEqual(['/bin/sh', '-c', 'make test']);
    expect(argvOf({ exec: ['a', 'b'] }, shell)).toEqual(['a', 'b']);
    const c = applyMetadata({ Cmd: ['sh'] }, { kind: 'ENTRYPOINT', command: { exec: ['/entry'] } });
    expect(c).toMatchObject({ Entrypoint: ['/entry'], Cmd: null });
  });

  it('EXPOSE, VOLUME, LABEL and ONBUILD add to what the base has', () => {
    let c = applyMetadata({ ExposedPorts: { '80/tcp': {} } }, { kind: 'EXPOSE', ports: ['53/udp'] });
    expect(c.ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {} });
    c = applyMetadata({ Volumes: { '/a': {} } }, { kind: 'VOLUME', paths: ['/b'] });
    expect(c.Volumes).toEqual({ '/a': {}, '/b': {} });
    c = applyMetadata({ Labels: { a: '1' } }, { kind: 'LABEL', pairs: [['b', '2'], ['a', '3']] });
    expect(c.Labels).toEqual({ a: '3', b: '2' });
    c = applyMetadata({ OnBuild: ['RUN one'] }, { kind: 'ONBUILD', trigger: 'RUN two' });
    expect(c.OnBuild).toEqual(['RUN one', 'RUN two']);
  });

  it('HEALTHCHECK, STOPSIGNAL, USER and SHELL are stored as docker stores them', () => {
    const health = { Test: ['CMD-SHELL', 'true'], Interval: 5e9, Retries: 2 };
    expect(applyMetadata({}, { kind: 'HEALTHCHECK', health }).Healthcheck).toEqual(health);
    expect(applyMetadata({}, { kind: 'STOPSIGNAL', signal: 'SIGINT' }).StopSignal).toBe('SIGINT');
    expect(applyMetadata({}, { kind: 'USER', user: 'app:app' }).User).toBe('app:app');
    expect(applyMetadata({}, { kind: 'SHELL', shell: ['/bin/bash', '-c'] }).Shell).toEqual(['/bin/bash', '-c']);
  });

  it('history: #(nop) for metadata, the argv for RUN, with the build args it saw', () => {
    expect(createdBy('ENV A=1', { kind: 'ENV', pairs: [['A', '1']] }, {}, [])).toBe('/bin/sh -c #(nop) ENV A=1');
    expect(createdBy('RUN make', run('make'), {}, ['V=1', 'W=2'])).toBe('|2 V=1 W=2 /bin/sh -c make');
    expect(createdBy('RUN make', run('make'), {}, [])).toBe('/bin/sh -c make');
  });
});

describe('RUN argv', () => {
  it('shell and exec form', () => {
    expect(runArgv(run('echo hi'), {}).argv).toEqual(['/bin/sh', '-c', 'echo hi']);
    expect(runArgv({ kind: 'RUN', command: { exec: ['echo', 'hi'] }, heredocs: [] }, {}).argv).toEqual(['echo', 'hi']);
  });

  it('a heredoc alone is the script; with #! it becomes a file of its own', () => {
    expect(runArgv(run('<<EOF', [{ name: 'EOF', body: 'echo a\necho b\n' }]), {}).argv).toEqual(['/bin/sh', '-c', 'echo a\necho b\n']);
    const script = runArgv(run('<<EOF', [{ name: 'EOF', body: '#!/usr/bin/env python3\nprint(1)\n' }]), {});
    expect(script.argv).toEqual(['/dev/pipes/EOF']);
    expect(script.script).toEqual({ name: 'EOF', body: '#!/usr/bin/env python3\nprint(1)\n' });
  });

  it('a heredoc after a command goes to the shell with its body, which feeds the command', () => {
    const r = runArgv(run('cat <<A > /a', [{ name: 'A', body: 'one\n' }]), {});
    expect(r.argv).toEqual(['/bin/sh', '-c', 'cat <<A > /a\none\nA']);
    expect(r.script).toBeUndefined();
  });
});
