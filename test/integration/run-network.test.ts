// `run` on bridge networks, through the CLI: published ports, names on a user network,
// isolation between networks, parallel address allocation, and nothing left behind.
// This file's default network uses its own bridge and subnet (TSRUN_BRIDGE, TSRUN_BRIDGE_SUBNET).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describePrivileged, TestEnv, type Result } from './helpers/env.js';
import { loadBusybox } from './helpers/images.js';

const tag = `t${process.pid % 10000}`;
const octet = 100 + (process.pid % 100);
const netEnv = { TSRUN_BRIDGE: `${tag}br0`, TSRUN_BRIDGE_SUBNET: `10.213.${octet}.0/24` };

describePrivileged('tsrun run: networking', () => {
  let env: TestEnv;
  let image: string;
  const tsrun = (args: string[]): Result => env.run(args, { env: netEnv });

  beforeAll(() => {
    env = new TestEnv('net');
    image = loadBusybox(env);
  });
  afterAll(async () => {
    await env.cleanup();
    const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
    const rules = execFileSync('iptables-save', { encoding: 'utf8' });
    expect(links).not.toContain(tag);
    expect(links).not.toMatch(/veth[0-9a-f]{8}@/);
    expect(rules).not.toContain(`10.213.${octet}.`);
  });

  it('gives the container an address, a default route and its name in /etc/hosts', () => {
    const r = tsrun(['run', '--rm', '--hostname', 'box', image, 'sh', '-c', 'ip -4 -o addr show eth0; ip route; grep box /etc/hosts']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`inet 10\\.213\\.${octet}\\.\\d+/24`));
    expect(r.stdout).toContain(`default via 10.213.${octet}.1`);
    expect(r.stdout).toMatch(new RegExp(`10\\.213\\.${octet}\\.\\d+\\s+box`));
  });

  it('keeps one address and one default route on every run of a restarting container', async () => {
    // Each run sets eth0 again from inside (the net-up step), in the namespace the runs share:
    // the same address, and the default route it finds there from the run before.
    const id = tsrun(['run', '-d', '--restart', 'on-failure:2', image, 'sh', '-c', 'ip -4 -o addr show eth0 | wc -l; ip route | grep -c "^default via"; exit 1']).stdout.trim();
    try {
      for (let i = 0; i < 100 && tsrun(['inspect', '--format', '{{.State.Status}}', id]).stdout.trim() !== 'exited'; i++) await new Promise((r) => setTimeout(r, 100));
      expect(tsrun(['inspect', '--format', '{{.RestartCount}} {{.State.ExitCode}}', id]).stdout.trim()).toBe('2 1');
      // Three runs, each with one IPv4 address on eth0 and one default route.
      expect(tsrun(['logs', id]).stdout).toBe('1\n1\n'.repeat(3));
    } finally {
      tsrun(['rm', '-f', id]);
    }
  });

  it('publishes a port on 127.0.0.1 and on the host\'s own address', async () => {
    const www = join(env.root, 'www');
    mkdirSync(www);
    writeFileSync(join(www, 'index.html'), 'hello from the container\n');
    const port = 20000 + (process.pid % 20000);
    const child = env.spawn(['run', '--rm', '--init', '-p', `${port}:80`, '-v', `${www}:/www:ro`, image, 'httpd', '-f', '-p', '80', '-h', '/www'], {
      env: { ...process.env, ...netEnv },
    });
    try {
      const hostIp = execFileSync('sh', ['-c', "ip -4 -o route get 1.1.1.1 | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p'"], { encoding: 'utf8' }).trim();
      const get = async (host: string) => {
        for (let i = 0; i < 50; i++) {
          try {
            return await (await fetch(`http://${host}:${port}/`)).text();
          } catch {
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        throw new Error(`nothing answered on ${host}:${port}`);
      };
      expect(await get('127.0.0.1')).toBe('hello from the container\n');
      if (hostIp) expect(await get(hostIp)).toBe('hello from the container\n');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('exit', r));
    }
  });

  it('resolves names on a user network, and isolates networks from each other', async () => {
    expect(tsrun(['network', 'create', '--subnet', `10.214.${octet}.0/24`, `${tag}-a`]).status).toBe(0);
    expect(tsrun(['network', 'create', '--subnet', `10.215.${octet}.0/24`, `${tag}-b`]).status).toBe(0);
    const server = env.spawn(['run', '--rm', '--name', `${tag}-srv`, '--network', `${tag}-a`, image, 'sh', '-c', 'echo pong | nc -l -p 7000'], {
      env: { ...process.env, ...netEnv },
    });
    try {
      await new Promise((r) => setTimeout(r, 600));
      const same = tsrun(['run', '--rm', '--network', `${tag}-a`, image, 'sh', '-c', `nc ${tag}-srv 7000 </dev/null`]);
      expect(same.stdout).toBe('pong\n');
      const other = tsrun(['run', '--rm', '--network', `${tag}-b`, image, 'sh', '-c',
        `getent hosts ${tag}-srv || echo NO-NAME; ping -c1 -W1 10.214.${octet}.2 >/dev/null 2>&1 && echo REACHED || echo UNREACHABLE`]);
      expect(other.stdout).toBe('NO-NAME\nUNREACHABLE\n');
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.on('exit', r));
    }
    expect(tsrun(['network', 'rm', `${tag}-a`, `${tag}-b`]).status).toBe(0);
  });

  it('gives 20 parallel containers 20 distinct addresses', async () => {
    // All 20 hold their address at once: each waits for a file the test writes once all reported.
    const sync = join(env.root, 'sync');
    mkdirSync(sync);
    const script = 'ip -4 -o addr show eth0; while [ ! -e /sync/go ]; do sleep 0.1; done';
    const outputs: string[] = Array.from({ length: 20 }, () => '');
    const exits = outputs.map((_, i) =>
      new Promise<void>((resolve) => {
        const c = env.spawn(['run', '--rm', '-v', `${sync}:/sync`, image, 'sh', '-c', script], { env: { ...process.env, ...netEnv } });
        c.stdout!.on('data', (d) => (outputs[i] += d));
        c.stderr!.on('data', (d) => (outputs[i] += d));
        c.on('exit', () => resolve());
      }));
    for (let t = 0; t < 600 && outputs.some((o) => !o.includes('inet')); t++) await new Promise((r) => setTimeout(r, 100));
    writeFileSync(join(sync, 'go'), '');
    await Promise.all(exits);
    const addresses = outputs.map((o) => /inet (\S+)\//.exec(o)?.[1] ?? `failed: ${o}`);
    expect(addresses.filter((a) => !a.startsWith(`10.213.${octet}.`))).toEqual([]);
    expect(new Set(addresses).size).toBe(20);
  }, 120_000);

  it('port lists the published ports, a random host port for -p PORT', () => {
    const id = tsrun(['run', '-d', '-p', '127.0.0.1:18090:80', '-p', '81/udp', image, 'sleep', '30']).stdout.trim();
    try {
      const lines = tsrun(['port', id]).stdout.trim().split('\n');
      expect(lines[0]).toBe('80/tcp -> 127.0.0.1:18090');
      expect(lines[1]).toMatch(/^81\/udp -> 0\.0\.0\.0:\d+$/);
      expect(tsrun(['port', id, '80']).stdout).toBe('127.0.0.1:18090\n');
      expect(tsrun(['port', id, '82']).status).not.toBe(0);
      // ps writes them as docker ps does: host side first.
      expect(tsrun(['ps', '--filter', `id=${id}`, '--format', '{{.Ports}}']).stdout).toMatch(/^127\.0\.0\.1:18090->80\/tcp, 0\.0\.0\.0:\d+->81\/udp\n$/);
    } finally {
      tsrun(['rm', '-f', id]);
    }
  });

  it('--network container:<name> shares another container\'s network namespace', async () => {
    const owner = env.spawn(['run', '--rm', '--name', `${tag}-own`, image, 'sh', '-c', 'echo shared | nc -l -p 7002'], {
      env: { ...process.env, ...netEnv },
    });
    try {
      await new Promise((r) => setTimeout(r, 700));
      const r = tsrun(['run', '--rm', '--network', `container:${tag}-own`, image, 'sh', '-c', 'nc 127.0.0.1 7002 </dev/null']);
      expect(r.stdout).toBe('shared\n');
      expect(tsrun(['run', '--rm', '--network', 'container:no-such', image, 'true']).stderr).toContain('no such container');
    } finally {
      owner.kill('SIGTERM');
      await new Promise((r) => owner.on('exit', r));
    }
  });

  it('network prune leaves nothing of tsrun in the host\'s network, and the next container brings the default bridge back', () => {
    expect(tsrun(['network', 'create', '--subnet', `10.214.${octet}.0/24`, '-o', `bridge=${tag}pr`, `${tag}-unused`]).status).toBe(0);
    expect(tsrun(['run', '--rm', '--network', `${tag}-unused`, image, 'true']).status).toBe(0);
    const rulesOf = (bridge: string) => execFileSync('iptables-save', { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`tsrun:${bridge}`));
    expect(rulesOf(`${tag}br0`).length).toBeGreaterThan(0);
    const r = tsrun(['network', 'prune', '-f']);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(r.stdout.split('\n')).toContain(`${tag}-unused`);
    for (const bridge of [`${tag}br0`, `${tag}pr`]) {
      expect(rulesOf(bridge)).toEqual([]);
      expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' })).not.toContain(`${bridge}:`);
    }
    expect(tsrun(['network', 'ls']).stdout).toMatch(new RegExp(` bridge +bridge +10\\.213\\.${octet}\\.0/24 `)); // its record stays
    const again = tsrun(['run', '--rm', image, 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain(`10.213.${octet}.`);
    expect(rulesOf(`${tag}br0`).length).toBeGreaterThan(0);
  });

  it('--ip fixes the address on a user-defined network, and refuses one taken, outside it, or on the default network', async () => {
    const netName = `${tag}-ip`;
    const subnet = `10.216.${octet}`;
    expect(tsrun(['network', 'create', '--subnet', `${subnet}.0/24`, netName]).status).toBe(0);
    const holder = env.spawn(['run', '--rm', '--name', `${tag}-ip1`, '--network', netName, '--ip', `${subnet}.77`, image, 'sh', '-c', 'ip -4 -o addr show eth0; sleep 30'], {
      env: { ...process.env, ...netEnv },
    });
    try {
      let out = '';
      holder.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      for (let i = 0; i < 50 && !out.includes('inet'); i++) await new Promise((r) => setTimeout(r, 100));
      expect(out).toContain(`inet ${subnet}.77/24`);
      expect(tsrun(['inspect', '-f', '{{json .NetworkSettings.Networks}}', `${tag}-ip1`]).stdout).toContain(`"IPAMConfig":{"IPv4Address":"${subnet}.77"}`);
      const taken = tsrun(['run', '--rm', '--network', netName, '--ip', `${subnet}.77`, image, 'true']);
      expect(taken.status).toBe(125);
      expect(taken.stderr).toContain(`address ${subnet}.77 is already in use on network ${netName}`);
    } finally {
      holder.kill('SIGTERM');
      await new Promise((r) => holder.on('exit', r));
    }
    const outside = tsrun(['run', '--rm', '--network', netName, '--ip', '10.1.2.3', image, 'true']);
    expect(outside.status).toBe(125);
    expect(outside.stderr).toContain(`invalid address 10.1.2.3: not a host address of ${subnet}.0/24`);
    const onDefault = tsrun(['run', '--rm', '--ip', `${subnet}.78`, image, 'true']);
    expect(onDefault.status).toBe(125);
    expect(onDefault.stderr).toContain('--ip needs a user-defined network');
    expect(tsrun(['run', '--rm', '--network', netName, '--ip', '10.1.2', image, 'true']).stderr).toMatch(/--ip.*not an IPv4 address/);
    expect(tsrun(['ps', '-aq']).stdout).toBe('');
    expect(tsrun(['network', 'rm', netName]).status).toBe(0);
  });

  it('refuses -p with --network none, naming the conflict', () => {
    const r = tsrun(['run', '--rm', '--network', 'none', '-p', '80', image, 'true']);
    expect(r.status).toBe(125);
    expect(r.stderr).toContain('--network none');
  });
});
