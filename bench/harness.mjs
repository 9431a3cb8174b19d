// The bench harness: time whole commands over repeated runs and print a markdown table.
// Every engine is measured by the same procedure in the same run, so the rows compare.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Run `argv` `runs` times (after `warmup` untimed runs); returns wall-time stats in ms. */
export function timeCommand(argv, { runs = 20, warmup = 3, env, before } = {}) {
  const samples = [];
  for (let i = 0; i < warmup + runs; i++) {
    if (before) before(i);
    const start = process.hrtime.bigint();
    const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (r.status !== 0) {
      throw new Error(`${argv[0]} failed (status ${r.status}):\n${r.stderr?.toString().slice(0, 2000)}`);
    }
    if (i >= warmup) samples.push(ms);
  }
  return stats(samples);
}

export function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { runs: s.length, median, min: s[0], max: s.at(-1) };
}

/** Whether a program is on PATH. */
export function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function table(title, rows, unit = 'ms') {
  const f = (x) => (typeof x === 'number' ? x.toFixed(1) : x);
  const out = [`### ${title}`, '', `| command | median ${unit} | min | max | runs |`, '| --- | ---: | ---: | ---: | ---: |'];
  for (const r of rows) {
    if (r.skipped) out.push(`| ${r.name} | n/a | | | ${r.skipped} |`);
    else out.push(`| ${r.name} | ${f(r.median)} | ${f(r.min)} | ${f(r.max)} | ${r.runs} |`);
  }
  return out.join('\n') + '\n';
}

/** Measure one row, or record why it could not be measured (engine missing, failed). */
export function row(name, fn) {
  try {
    return { name, ...fn() };
  } catch (err) {
    // The first line that says why (a tsrun error, not the command line that failed).
    const lines = String(err.message ?? err).split('\n');
    const why = lines.find((l) => /tsrun:|error|Error/.test(l) && !l.includes(' failed (status')) ?? lines[0];
    return { name, skipped: why.slice(0, 160) };
  }
}

/** Unmount whatever an engine left mounted under `dir` (podman's storage does), deepest first. */
export function unmountUnder(dir) {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4]).filter((m) => m && m.startsWith(dir)).sort().reverse();
  for (const m of mounts) spawnSync('umount', ['-l', m]);
}
