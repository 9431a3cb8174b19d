// tsrun's entry point with every command. Each command lives in its own cli/<command>.ts, which
// declares its flags and imports the code under src/ only when it runs. What users run is
// bundled (scripts/bundle.mjs): this file with everything it imports into dist/tsrun-main.cjs,
// for `tsrun --help`, completion and command lines no single command owns; and, for each
// command word, cli/program.ts with only that word's modules from the table below. The `tsrun`
// command, dist/tsrun.cjs, runs the bundle of the word it is given through V8's code cache
// (cli/launcher.ts).
import { runTsrun, type CommandModule } from './program.js';

/**
 * cli module → the commands it registers, in the order `tsrun --help` lists them. The imports are
 * written out (not built from the name) so the bundler can see them: each one's code is in the
 * bundle but runs only when its command does. scripts/bundle.mjs reads this table to make the
 * per-word bundles: keep each entry in the form `[() => import('./x.js'), ['word', ...]]`.
 */
export const MODULES: CommandModule[] = [
  [() => import('./run.js'), ['run']], [() => import('./create.js'), ['create']],
  [() => import('./exec.js'), ['exec']], [() => import('./cp.js'), ['cp']], [() => import('./diff.js'), ['diff']],
  [() => import('./export.js'), ['export']], [() => import('./commit.js'), ['commit']],
  [() => import('./top.js'), ['top']], [() => import('./ps.js'), ['ps']],
  [() => import('./lifecycle.js'), ['start', 'stop', 'restart', 'kill', 'rm', 'wait', 'pause', 'unpause', 'rename']],
  [() => import('./logs.js'), ['logs']], [() => import('./attach.js'), ['attach']], [() => import('./port.js'), ['port']],
  [() => import('./inspect.js'), ['inspect']], [() => import('./container.js'), ['container']],
  [() => import('./stats.js'), ['stats', 'update']], [() => import('./pull.js'), ['pull']], [() => import('./push.js'), ['push']],
  [() => import('./images.js'), ['images', 'image', 'rmi', 'tag']], [() => import('./load.js'), ['load']],
  [() => import('./save.js'), ['save']], [() => import('./system.js'), ['system', 'image']],
  [() => import('./build.js'), ['build', 'builder', 'history', 'image']],
  [() => import('./login.js'), ['login']], [() => import('./logout.js'), ['logout']],
  [() => import('./network.js'), ['network']], [() => import('./volume.js'), ['volume']], [() => import('./info.js'), ['info']],
  [() => import('./version.js'), ['version']], [() => import('./completion.js'), ['completion']],
];

void runTsrun(MODULES);
