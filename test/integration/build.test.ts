// tsrun build on the real kernel: an image from a Dockerfile that runs, the layer cache (what
// hits, what misses, the same image ID when nothing changed), the flags CI jobs use, a failing
// RUN and a killed build leaving nothing behind, and the context's edges (.dockerignore, stdin,
// -f outside the context). buildah's equality is build-reference.test.ts.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describePrivileged, repoRoot, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

describePrivileged('tsrun build', () => {
  let env: TestEnv;
  let work: string;
  const t = (args: string[], input?: string | Buffer): Result => env.run(args, { timeout: 120_000, ...(input !== undefined && { input }) });
  const ok = (args: string[], input?: string | Buffer): Result => {
    const r = t(args, input);
    if (r.status !== 0) throw new Error(`tsrun ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    return r;
  };
  const inspect = (name: string) => JSON.parse(ok(['image', 'inspect', name]).stdout)[0];
  /** A context directory with these files (a string is a file, null a directory). */
  const context = (name: string, files: Record<string, string | null>): string => {
    const dir = join(work, name);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const [path, content] of Object.entries(files)) {
      const full = join(dir, path);
      mkdirSync(content === null ? full : join(full, '..'), { recursive: true });
      if (content !== null) writeFileSync(full, content);
    }
    return dir;
  };
  const containers = () => t(['ps', '-aq']).stdout.split('\n').filter(Boolean);

  beforeAll(() => {
    env = new TestEnv('build');
    work = mkdtempSync(join(tmpdir(), 'tsrun-build-'));
    loadBusybox(env);
    // From an OCI layout the store keeps the compressed layers: what `--output` (like push) needs.
    const layout = join(work, 'oci-busybox');
    execFileSync(process.execPath, [join(repoRoot, 'scripts', 'make-busybox-image.mjs'), '--out', layout, '--format', 'oci', '--name', 'docker.io/library/ocibox:latest']);
    ok(['load', '-q', '-i', layout]);
  });
  afterAll(async () => {
    const ids = containers();
    if (ids.length) t(['rm', '-f', ...ids]);
    rmSync(work, { recursive: true, force: true });
    await env.cleanup();
  });

  it('builds an image that runs, with the config its Dockerfile sets', () => {
    const dir = context('app', {
      Dockerfile: [
        'FROM busybox',
        'ARG GREETING=hello',
        'ENV APP_HOME=/app MODE=test',
        'WORKDIR $APP_HOME',
        'COPY app.sh ./',
        'RUN chmod 755 app.sh && echo "$GREETING from build" > built.txt',
        'USER nobody',
        'EXPOSE 8080 53/udp',
        'LABEL org.example.team="build team" version=1',
        'VOLUME /data',
        'STOPSIGNAL SIGINT',
        'HEALTHCHECK --interval=5s --retries=2 CMD true',
        'ENTRYPOINT ["/app/app.sh"]',
        'CMD ["world"]',
      ].join('\n'),
      'app.sh': '#!/bin/sh\necho "$(cat /app/built.txt), $1 in $MODE as $(id -un)"\n',
    });
    const r = ok(['build', '-t', 'app:v1', '--progress', 'plain', dir]);
    expect(r.stderr).toMatch(/#\d+ \[1\/14\] FROM busybox/);
    expect(r.stderr).toMatch(/#\d+ \[6\/14\] RUN chmod 755 app.sh/);
    expect(r.stderr).toContain('Successfully tagged docker.io/library/app:v1');
    expect(ok(['run', '--rm', '--network', 'none', 'app:v1']).stdout).toBe('hello from build, world in test as nobody\n');
    const c = inspect('app:v1').Config;
    expect(c.Env).toEqual(expect.arrayContaining(['APP_HOME=/app', 'MODE=test']));
    expect(c.Env.some((e: string) => e.startsWith('GREETING='))).toBe(false); // an ARG is not kept
    expect(c.WorkingDir).toBe('/app');
    expect(c.User).toBe('nobody');
    expect(c.ExposedPorts).toEqual({ '8080/tcp': {}, '53/udp': {} });
    expect(c.Labels).toMatchObject({ 'org.example.team': 'build team', version: '1' });
    expect(c.Volumes).toEqual({ '/data': {} });
    expect(c.StopSignal).toBe('SIGINT');
    expect(c.Entrypoint).toEqual(['/app/app.sh']);
    expect(c.Cmd).toEqual(['world']);
    const history = ok(['history', '--no-trunc', 'app:v1']).stdout;
    expect(history).toContain('chmod 755 app.sh');
    expect(history).toMatch(/#\(nop\) {1,2}HEALTHCHECK/);
    // The build's own containers are gone.
    expect(containers()).toEqual([]);
  });

  it('caches by content: a rebuild is all CACHED and the same image; a changed file reruns from its COPY on', () => {
    const dir = context('cache', {
      Dockerfile: 'FROM busybox\nRUN echo one > /one\nCOPY data /data\nRUN cat /data > /copy\nCMD ["cat", "/copy"]\n',
      data: 'v1\n',
    });
    const first = ok(['build', '-q', '-t', 'cached', dir]).stdout.trim();
    expect(first).toMatch(/^sha256:[0-9a-f]{64}$/);
    const again = ok(['build', '--progress', 'plain', '-t', 'cached', dir]);
    expect(again.stderr.match(/CACHED/g)?.length).toBe(4);
    expect(inspect('cached').Id).toBe(first);
    // mtime is not content.
    utimesSync(join(dir, 'data'), new Date(2001, 1, 1), new Date(2001, 1, 1));
    expect(ok(['build', '-q', dir]).stdout.trim()).toBe(first);
    writeFileSync(join(dir, 'data'), 'v2\n');
    const changed = ok(['build', '--progress', 'plain', '-t', 'cached', dir]);
    expect(changed.stderr).toMatch(/\[2\/5\] RUN echo one > \/one\n#\d+ CACHED/);
    expect(changed.stderr).not.toMatch(/\[3\/5\] COPY data \/data\n#\d+ CACHED/);
    expect(ok(['run', '--rm', '--network', 'none', 'cached']).stdout).toBe('v2\n');
    const none = ok(['build', '--no-cache', '--progress', 'plain', dir]);
    expect(none.stderr).not.toContain('CACHED');
    // A build arg a RUN sees is part of its key.
    const args = context('args', { Dockerfile: 'FROM busybox\nARG V=a\nRUN echo $V > /v\n' });
    const a = ok(['build', '-q', args]).stdout.trim();
    expect(ok(['build', '-q', args]).stdout.trim()).toBe(a);
    expect(ok(['build', '-q', '--build-arg', 'V=b', args]).stdout.trim()).not.toBe(a);
  });

  it('a failing RUN names the step, the line and the exit code, shows its output, and leaves nothing', () => {
    const dir = context('fail', { Dockerfile: 'FROM busybox\nENV A=1\nRUN echo before-failing && exit 3\nCMD ["true"]\n' });
    const images = ok(['images', '-q']).stdout;
    for (const mode of [['--progress', 'plain'], ['-q']]) {
      const r = t(['build', ...mode, '-t', 'broken', dir]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('before-failing');
      expect(r.stderr).toContain('Dockerfile:3: [3/4] RUN echo before-failing && exit 3');
      expect(r.stderr).toContain('exit code: 3');
      expect(r.stdout).toBe('');
    }
    expect(t(['image', 'inspect', 'broken']).status).not.toBe(0);
    expect(ok(['images', '-q']).stdout).toBe(images);
    expect(containers()).toEqual([]);
  });

  it('errors name the Dockerfile line: unknown instructions, unsupported flags, a missing source', () => {
    const cases: Array<[string, RegExp]> = [
      ['FROM busybox\nFROBNICATE x\n', /Dockerfile:2: .*unknown instruction: FROBNICATE/i],
      ['FROM busybox\nRUN --mount=type=cache,target=/x true\n', /Dockerfile:2: .*--mount/],
      ['FROM busybox\nCOPY nothere /x\n', /Dockerfile:2: .*nothere/],
      ['ENV A=b\nFROM busybox\n', /Dockerfile:1: /],
    ];
    for (const [text, want] of cases) {
      const dir = context('errors', { Dockerfile: text });
      const r = t(['build', dir]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(want);
    }
    expect(containers()).toEqual([]);
  });

  it('kill -9 mid-step: nothing recorded; the next build removes the step\'s container and runs the step again', async () => {
    const dir = context('killed', { Dockerfile: 'FROM busybox\nRUN echo started && sleep 30 && echo never > /never\n' });
    const child = env.spawn(['build', '--progress', 'plain', '-t', 'killed', dir]);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const deadline = Date.now() + 30_000;
    // The step's own output line (`#2 0.1 started`), not its header: the process runs.
    const running = /^#\d+ [\d.]+ started$/m;
    while (!running.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(err).toMatch(running);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(t(['image', 'inspect', 'killed']).status).not.toBe(0);
    // The step's container outlives the killed build; the next build removes it.
    writeFileSync(join(dir, 'Dockerfile'), 'FROM busybox\nRUN echo quick > /quick\n');
    const r = ok(['build', '--progress', 'plain', '-t', 'killed', dir]);
    expect(r.stderr).not.toContain('CACHED');
    expect(containers()).toEqual([]);
  });

  it('--target, -f outside the context, .dockerignore, --iidfile, --label, --output and a context on stdin', () => {
    const dir = context('multi', {
      Dockerfile: 'ARG BASE=busybox\nFROM $BASE AS base\nRUN echo base > /base\nFROM base AS test\nRUN echo test > /test\nFROM $BASE\nCOPY --from=base /base /from-base\nCOPY . /ctx/\n',
      '.dockerignore': 'secret*\n!secret-ok\nnested/**/skip\n',
      'secret.key': 'no',
      'secret-ok': 'yes',
      'nested/a/skip': 'no',
      'nested/a/keep': 'yes',
    });
    const test = ok(['build', '-q', '--target', 'test', dir]).stdout.trim();
    expect(ok(['run', '--rm', '--network', 'none', test, 'cat', '/base', '/test']).stdout).toBe('base\ntest\n');
    const iid = join(work, 'iid');
    ok(['build', '-q', '-t', 'final', '--iidfile', iid, '--label', 'ci=yes', dir]);
    expect(readFileSync(iid, 'utf8')).toBe(inspect('final').Id);
    expect(inspect('final').Config.Labels).toMatchObject({ ci: 'yes' });
    const listing = ok(['run', '--rm', '--network', 'none', 'final', 'sh', '-c', 'cat /from-base; cd /ctx && find . -type f | sort']).stdout;
    expect(listing).toBe('base\n./.dockerignore\n./Dockerfile\n./nested/a/keep\n./secret-ok\n');
    // -f outside the context.
    const outside = join(work, 'Outside.Dockerfile');
    writeFileSync(outside, 'FROM busybox\nCOPY secret-ok /ok\n');
    expect(ok(['run', '--rm', '--network', 'none', ok(['build', '-q', '-f', outside, dir]).stdout.trim(), 'cat', '/ok']).stdout).toBe('yes');
    // An archive instead of (besides) the store: skopeo reads it.
    const archive = join(work, 'out.tar');
    ok(['build', '-q', '--build-arg', 'BASE=ocibox', '--output', `type=oci,dest=${archive}`, '-t', 'archived', dir]);
    expect(existsSync(archive)).toBe(true);
    const skopeo = execFileSync('skopeo', ['inspect', '--config', `docker-archive:${archive}`], { encoding: 'utf8' });
    expect(JSON.parse(skopeo).rootfs.diff_ids).toEqual(inspect('archived').RootFS.Layers);
    // The context as a tar on stdin.
    const tar = execFileSync('tar', ['-C', dir, '-c', '.']);
    const fromStdin = ok(['build', '-q', '-'], tar).stdout.trim();
    expect(ok(['run', '--rm', '--network', 'none', fromStdin, 'ls', '/ctx']).stdout).toContain('secret-ok');
    // A lone Dockerfile on stdin: no context.
    const lone = ok(['build', '-q', '-'], 'FROM busybox\nRUN echo lone > /lone\n').stdout.trim();
    expect(ok(['run', '--rm', '--network', 'none', lone, 'cat', '/lone']).stdout).toBe('lone\n');
  });

  it('RUN --network=none has no network; the build\'s --memory limits RUN', () => {
    const dir = context('limits', {
      Dockerfile: 'FROM busybox\nRUN --network=none ip -o link | grep -v " lo:" | wc -l > /links\nRUN cat /sys/fs/cgroup/memory.max 2>/dev/null > /mem || cat /sys/fs/cgroup/memory/memory.limit_in_bytes > /mem\n',
    });
    const id = ok(['build', '-q', '--memory', '64m', dir]).stdout.trim();
    expect(ok(['run', '--rm', '--network', 'none', id, 'cat', '/links', '/mem']).stdout).toBe(`0\n${64 * 1024 * 1024}\n`);
  });

  it('stages named through ARGs are stages, never images pulled; BUILDPLATFORM is predefined; COPY --from cached leaves no container', () => {
    const dir = context('stages', {
      Dockerfile: [
        'ARG BASE=builder',
        'ARG SRC=builder',
        'FROM --platform=$BUILDPLATFORM busybox AS builder',
        'RUN echo built > /built',
        'FROM ${BASE}',
        'ARG SRC',
        'COPY --from=${SRC} /built /again',
      ].join('\n'),
    });
    const id = ok(['build', '-q', '--network', 'none', dir]).stdout.trim();
    expect(ok(['run', '--rm', '--network', 'none', id, 'cat', '/built', '/again']).stdout).toBe('built\nbuilt\n');
    const again = ok(['build', '--progress', 'plain', '--network', 'none', dir]).stderr;
    expect(again).toMatch(/COPY --from=\$\{SRC\} \/built \/again\n#\d+ CACHED/);
    expect(again).toMatch(/#\d+ \[\d+\/\d+\] FROM builder\n/); // FROM ${BASE}, as expanded
    expect(again).toMatch(/#\d+ \[builder 1\/\d+\] FROM busybox AS builder\n/);
    expect(containers()).toEqual([]);
    // A stage used before it is built is an error naming the line, not a pull of "later".
    const bad = context('order', { Dockerfile: 'FROM busybox AS user\nCOPY --from=later /x /x\nFROM busybox AS later\n' });
    const r = t(['build', '--network', 'none', '--target', 'user', bad]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Dockerfile:2: .*stage "later" is not built before this one/);
  });

  it('a RUN gets the host network only when the build allows it', () => {
    const dir = context('hostnet', { Dockerfile: 'FROM busybox\nRUN --network=host true\n' });
    expect(t(['build', '--network', 'none', dir]).stderr).toMatch(/Dockerfile:2: .*this build runs with --network none/);
    expect(t(['build', dir]).stderr).toMatch(/Dockerfile:2: .*needs the build's --allow network.host/);
    expect(t(['build', '-q', '--allow', 'network.host', dir]).status).toBe(0);
    expect(containers()).toEqual([]);
  });

  it('COPY and ADD into an image symlink to a directory go where it points and keep the link; a .gz that is not a tar is copied', () => {
    const dir = context('symdest', {
      Dockerfile: [
        'FROM busybox',
        'RUN mkdir -p /usr/mylib && ln -s usr/mylib /mylib',
        'COPY d /mylib/',
        'COPY f.txt /mylib/',
        'ADD t.tar /mylib/',
        'ADD data.json.gz /data/',
      ].join('\n'),
      'd/in-dir.txt': 'dir\n',
      'f.txt': 'file\n',
    });
    execFileSync('sh', ['-c', `mkdir -p ${work}/tarsrc && echo tar > ${work}/tarsrc/in-tar.txt && tar -C ${work}/tarsrc -cf ${dir}/t.tar . && printf '{}' | gzip > ${dir}/data.json.gz`]);
    const id = ok(['build', '-q', '--network', 'none', dir]).stdout.trim();
    const out = ok(['run', '--rm', '--network', 'none', id, 'sh', '-c', 'readlink /mylib; ls /usr/mylib; ls /data']).stdout;
    expect(out).toBe('usr/mylib\nf.txt\nin-dir.txt\nin-tar.txt\ndata.json.gz\n');
  });

  it('a RUN that changes nothing keeps no layer, and labels on a user\'s container do not make it a build\'s', () => {
    ok(['create', '--name', 'mine', '--network', 'none', '--label', 'tsrun.build=1@0', 'busybox', 'true']);
    const dir = context('noop', { Dockerfile: 'FROM busybox\nRUN ls >/dev/null\n' });
    const layersBefore = readdirSync(join(env.root, 'layers')).filter((n) => /^[0-9a-f]{64}$/.test(n)).length;
    const id = ok(['build', '-q', '--no-cache', '--network', 'none', dir]).stdout.trim();
    expect(readdirSync(join(env.root, 'layers')).filter((n) => /^[0-9a-f]{64}$/.test(n)).length).toBe(layersBefore);
    expect(inspect(id).RootFS.Layers).toEqual(inspect('busybox').RootFS.Layers);
    expect(ok(['ps', '-a', '--format', '{{.Names}}']).stdout).toBe('mine\n');
    ok(['rm', 'mine']);
  });

  it('ADD of a URL whose server trickles is given up at the registry timeout, with the setting to change', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      const tick = setInterval(() => res.write('x'), 200);
      res.on('close', () => clearInterval(tick));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const dir = context('trickle', { Dockerfile: `FROM busybox\nADD http://127.0.0.1:${port}/big.bin /big.bin\n` });
      const r = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = env.spawn(['build', '--network', 'none', dir], { env: { TSRUN_REGISTRY_TIMEOUT: '1.5' } });
        let stderr = '';
        child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('exit', (status) => resolve({ status, stderr }));
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/Dockerfile:2: .*download failed: less than 1024 bytes in 1.5 s; to wait longer, set TSRUN_REGISTRY_TIMEOUT/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
    expect(containers()).toEqual([]);
  });

  it('builder prune drops the cache; the images built stay and run', () => {
    const dir = context('prune', { Dockerfile: 'FROM busybox\nRUN echo kept > /kept\n' });
    ok(['build', '-q', '-t', 'pruned', dir]);
    const r = ok(['builder', 'prune', '-f']);
    expect(r.stdout).toMatch(/^Deleted build cache objects: [1-9]\d*\nTotal reclaimed space: /);
    expect(ok(['run', '--rm', '--network', 'none', 'pruned', 'cat', '/kept']).stdout).toBe('kept\n');
    expect(ok(['build', '--progress', 'plain', dir]).stderr).not.toContain('CACHED');
  });
});
