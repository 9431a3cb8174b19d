// Fails when a test was skipped in CI (root, real kernel, every package the README's setup
// installs): every integration test must run, and every unit test too, but for the few named
// below, each with its reason.
import { readFileSync } from 'node:fs';

const ALLOWED_UNIT_SKIPS = [
  /decompresses zstd with node:zlib where Node has it/, // node:zlib has zstd from Node 22.15 ...
  /says so when this Node has no native zstd/, // ... and before that, this one runs instead
  /unpack speed unpacks 10,000 small files/, // a benchmark, run with TSRUN_BENCH=1, never timed in CI
];

const report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const skipped = [];
for (const file of report.testResults) {
  const unit = file.name.includes('/test/unit/');
  for (const t of file.assertionResults) {
    if (t.status !== 'skipped' && t.status !== 'pending' && t.status !== 'todo') continue;
    if (unit && ALLOWED_UNIT_SKIPS.some((re) => re.test(t.fullName))) continue;
    skipped.push(`${file.name}: ${t.fullName}`);
  }
}
console.log(`${report.numPassedTests} passed, ${report.numFailedTests} failed, ${report.numPendingTests} skipped`);
if (skipped.length > 0) {
  console.error(`check-skips: ${skipped.length} test(s) skipped in CI:\n  ${skipped.join('\n  ')}`);
  process.exit(1);
}
