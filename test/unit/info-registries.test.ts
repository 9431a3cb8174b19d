// Where each insecure-registry declaration comes from, as `tsrun info` lists them.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { registriesInfo } from '../../src/info/registries.js';

const dir = mkdtempSync(join(tmpdir(), 'tsrun-info-registries-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('registriesInfo', () => {
  it('lists flags, the environment, the config file and loopback, each with its source', async () => {
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ 'insecure-registries': ['192.168.56.11:5000', '10.0.0.0/8'] }));
    const certs = join(dir, 'certs.d');
    mkdirSync(join(certs, 'registry.lab:5000'), { recursive: true });
    const info = await registriesInfo(['flag.example:443'], { TSRUN_CONFIG: config, TSRUN_INSECURE_REGISTRIES: 'env.example,[fd00::1]:5000', TSRUN_CERTS_D: certs });
    expect(info.configFile).toBe(config);
    expect(info.configExists).toBe(true);
    expect(info.errors).toEqual([]);
    expect(info.insecure).toEqual([
      { registry: 'flag.example:443', source: 'flag' },
      { registry: 'env.example', source: 'env' },
      { registry: '[fd00::1]:5000', source: 'env' },
      { registry: '192.168.56.11:5000', source: 'config' },
      { registry: '10.0.0.0/8', source: 'config' },
      { registry: '127.0.0.0/8', source: 'loopback' },
      { registry: '::1/128', source: 'loopback' },
      { registry: 'localhost', source: 'loopback' },
    ]);
    expect(info.certs[0]).toEqual({ dir: certs, registries: ['registry.lab:5000'] });
  });

  it('reports a broken config file instead of failing', async () => {
    const config = join(dir, 'broken.json');
    writeFileSync(config, '{ not json');
    const info = await registriesInfo([], { TSRUN_CONFIG: config });
    expect(info.errors).toEqual([expect.stringMatching(/parse .*broken\.json/)]);
    expect(info.insecure.every((d) => d.source === 'loopback')).toBe(true);
    expect(info.timeout).toEqual({ seconds: 45, source: 'default' });
  });

  it('shows the registry timeout and where it comes from', async () => {
    const config = join(dir, 'timeout.json');
    writeFileSync(config, JSON.stringify({ 'registry-timeout': 90 }));
    expect((await registriesInfo([], { TSRUN_CONFIG: join(dir, 'absent.json') })).timeout).toEqual({ seconds: 45, source: 'default' });
    expect((await registriesInfo([], { TSRUN_CONFIG: config })).timeout).toEqual({ seconds: 90, source: 'config' });
    expect((await registriesInfo([], { TSRUN_CONFIG: config, TSRUN_REGISTRY_TIMEOUT: '2.5' })).timeout).toEqual({ seconds: 2.5, source: 'env' });
  });

  it('reports a registry timeout that does not parse as the error pull would give', async () => {
    const info = await registriesInfo([], { TSRUN_CONFIG: join(dir, 'absent.json'), TSRUN_REGISTRY_TIMEOUT: '10m' });
    expect(info.timeout).toBeUndefined();
    expect(info.errors).toEqual([expect.stringMatching(/^TSRUN_REGISTRY_TIMEOUT: expected a number of seconds/)]);
  });

  it('says when there is no config file', async () => {
    const info = await registriesInfo([], { TSRUN_CONFIG: join(dir, 'absent.json') });
    expect(info.configExists).toBe(false);
    expect(info.errors).toEqual([]);
  });
});
