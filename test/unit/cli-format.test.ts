// formatTable (cli/table.ts): the tables of ps, network ls, volume ls, stats and `--format
// 'table ...'`. The expected lines are what docker 20.10 (Debian's docker.io) printed for the
// same cells, trailing blanks included.
import { expect, it } from 'vitest';
import { formatTable } from '../../cli/table.js';

it('lays a table out as docker does: a cell and 3 spaces, at least 10 wide, the last column unpadded', () => {
  // `docker ps` with no containers.
  expect(formatTable([['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES']])).toBe(
    'CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n',
  );
  // `docker volume ls` with one volume; `docker network ls`.
  expect(formatTable([['DRIVER', 'VOLUME NAME'], ['local', 'v1']])).toBe('DRIVER    VOLUME NAME\nlocal     v1\n');
  expect(formatTable([['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], ['889129c536e0', 'host', 'host', 'local'], ['e84654aa28cd', 'none', 'null', 'local']])).toBe(
    'NETWORK ID     NAME      DRIVER    SCOPE\n889129c536e0   host      host      local\ne84654aa28cd   none      null      local\n',
  );
  // `docker ps -a` with a created container: a wide column, and an empty one (PORTS) padded.
  expect(formatTable([
    ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
    ['20a3a3df59f6', '127.0.0.1:5000/busybox', '"true"', '1 second ago', 'Created', '', 'c1'],
  ])).toBe(
    'CONTAINER ID   IMAGE                    COMMAND   CREATED        STATUS    PORTS     NAMES\n' +
    '20a3a3df59f6   127.0.0.1:5000/busybox   "true"    1 second ago   Created             c1\n',
  );
});

it('counts characters, as Go counts runes, not UTF-16 units', () => {
  expect(formatTable([['COMMAND', 'NAMES'], ['"echo 🐳🐳"', 'x']])).toBe('COMMAND     NAMES\n"echo 🐳🐳"   x\n');
  // `docker images`: REPOSITORY wider than 10, TAG padded to 10.
  expect(formatTable([['REPOSITORY', 'TAG', 'SIZE'], ['busybox', 'latest', '4.26MB']])).toBe('REPOSITORY   TAG       SIZE\nbusybox      latest    4.26MB\n');
});

it('keeps the blanks before an empty last cell, as docker does (`--format \'table {{.ID}}\\t{{.Ports}}\'`)', () => {
  expect(formatTable([['CONTAINER ID', 'PORTS'], ['20a3a3df59f6', '']])).toBe('CONTAINER ID   PORTS\n20a3a3df59f6   \n');
});

it('pads a line with more cells than the header (a template value holding a tab) as tabwriter does', () => {
  // Column 0 is as wide as its widest cell (14); column 1 holds one cell, padded to the minimum.
  expect(formatTable([['NAME', 'PORTS'], ['a', 'b', 'c'], ['longer-name', 'd']])).toBe(
    `${'NAME'.padEnd(14)}PORTS\n${'a'.padEnd(14)}${'b'.padEnd(10)}c\n${'longer-name'.padEnd(14)}d\n`,
  );
});
