// The storage section of `tsrun info`: overlay support, backing filesystem names, usage.
import { mkdtempSync, mkdirSync, existsSync, writeFileSync, linkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { diskUsage, filesystemName, filesystemSupported, storageInfo } from '../../src/info/storage.js';

const dir = mkdtempSync(join(tmpdir(), 'tsrun-info-storage-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('filesystemSupported', () => {
  const text = 'nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\nnodev\tcgroup2\n';
  it('finds a type in /proc/filesystems, with or without nodev', () => {
    expect(filesystemSupported(text)).toBe(true);
    expect(filesystemSupported(text, 'ext4')).toBe(true);
    expect(filesystemSupported(text, 'cgroup')).toBe(false);
    expect(filesystemSupported('nodev\tsysfs\n')).toBe(false);
  });
});

describe('filesystemName', () => {
  it("uses docker's names for the magic numbers", () => {
    expect(filesystemName(0xef53)).toBe('extfs');
    expect(filesystemName(0x58465342)).toBe('xfs');
    expect(filesystemName(0x1234)).toBe('0x1234');
  });
});

describe('diskUsage', () => {
  it('counts allocated blocks, and a hard-linked file once', () => {
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'sub', 'a'), Buffer.alloc(100_000, 1));
    const once = diskUsage(tree);
    linkSync(join(tree, 'sub', 'a'), join(tree, 'b'));
    expect(diskUsage(tree)).toBe(once);
    expect(once).toBeGreaterThanOrEqual(100_000);
    expect(diskUsage(join(dir, 'missing'))).toBe(0);
  });
});

describe('storageInfo', () => {
  it('describes a store that does not exist without creating it', async () => {
    const root = join(dir, 'no-store');
    const info = await storageInfo(root);
    expect(existsSync(root)).toBe(false);
    expect(info).toMatchObject({ root, rootExists: false, images: 0, containers: { count: 0, size: 0 } });
    expect(info.filesystem?.size).toBeGreaterThan(0);
  });

  it("counts containers' upper dirs", async () => {
    const root = join(dir, 'store');
    const id = 'a'.repeat(64);
    mkdirSync(join(root, 'containers', id, 'upper'), { recursive: true });
    writeFileSync(join(root, 'containers', id, 'upper', 'new-file'), Buffer.alloc(10_000, 1));
    mkdirSync(join(root, 'containers', 'not-an-id'));
    const info = await storageInfo(root);
    expect(info.containers.count).toBe(1);
    expect(info.containers.size).toBeGreaterThanOrEqual(10_000);
  });
});
