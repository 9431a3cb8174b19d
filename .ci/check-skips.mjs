// Fails when an integration test was skipped: in CI (root, real kernel) every one must run.
// Unit tests may skip for a reason of the Node version (zstd in node:zlib arrives in 22.15).
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const skipped = [];
for (const file of report.testResults) {
  if (!file.name.includes('/test/integration/')) continue;
  for (const t of file.assertionResults) {
    if (t.status === 'skipped' || t.status === 'pending' || t.status === 'todo') skipped.push(`${file.name}: ${t.fullName}`);
  }
}
console.log(`${report.numPassedTests} passed, ${report.numFailedTests} failed, ${report.numPendingTests} skipped`);
if (skipped.length > 0) {
  console.error(`check-skips: ${skipped.length} integration test(s) skipped in CI:\n  ${skipped.join('\n  ')}`);
  process.exit(1);
}
