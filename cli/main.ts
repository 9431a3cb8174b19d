#!/usr/bin/env node
// tsrun's entry point. Each command lives in its own cli/<command>.ts, which declares its flags
// and imports the code under src/ only when it runs, so `tsrun run` does not pay to load
// the registry client.
import module from 'node:module';
import { Command, CommanderError } from 'commander';
import { collect } from './common.js';
import { register as registerRun } from './run.js';
import { register as registerImages } from './images.js';
import { register as registerLoad } from './load.js';
import { register as registerPull } from './pull.js';
import { register as registerPush } from './push.js';
import { register as registerLogin } from './login.js';
import { register as registerLogout } from './logout.js';
import { register as registerNetwork } from './network.js';
import { register as registerPs } from './ps.js';
import { register as registerLifecycle } from './lifecycle.js';
import { register as registerLogs } from './logs.js';
import { register as registerInspect } from './inspect.js';
import { register as registerContainer } from './container.js';
import { register as registerExec } from './exec.js';
import { register as registerCreate } from './create.js';
import { register as registerCp } from './cp.js';
import { register as registerDiff } from './diff.js';
import { register as registerExport } from './export.js';
import { register as registerCommit } from './commit.js';
import { register as registerTop } from './top.js';
import { register as registerSave } from './save.js';
import { register as registerSystem } from './system.js';
import { register as registerInfo } from './info.js';
import { register as registerVersion } from './version.js';
import { register as registerCompletion } from './completion.js';
import { register as registerStats } from './stats.js';

// Node >= 22.1 keeps V8's compiled code on disk: every later tsrun starts faster.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

const program = new Command('tsrun')
  .description('A daemonless, Docker-like container engine')
  .version('tsrun 0.1.0', '-v, --version')
  .option('--root <dir>', 'storage root: images, layers, containers (env TSRUN_ROOT)', undefined)
  .option('--runroot <dir>', 'runtime state directory (env TSRUN_RUNROOT)', undefined)
  .option('--insecure-registry <host[:port]|cidr>', 'allow plain HTTP / unverified TLS for this registry (repeatable)', collect, [])
  .option('-D, --debug', 'show the causes of errors', false)
  .enablePositionalOptions()
  .showHelpAfterError("See 'tsrun --help', or 'tsrun <command> --help'.")
  // Errors read like every other tsrun error: "tsrun: unknown option '--bogus'".
  .configureOutput({ outputError: (text, write) => write(`tsrun: ${text.replace(/^error: /, '')}`) })
  // docker's exit status for a usage error is 125, not commander's 1.
  .exitOverride((err: CommanderError) => {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
      process.exit(0);
    }
    process.exit(125);
  });

const commands = [
  registerRun, registerCreate, registerExec, registerCp, registerDiff, registerExport, registerCommit, registerTop,
  registerPs, registerLifecycle, registerLogs, registerInspect, registerContainer, registerStats,
  registerPull, registerPush, registerImages, registerLoad, registerSave, registerSystem, registerLogin, registerLogout, registerNetwork,
  registerInfo, registerVersion, registerCompletion,
];
for (const register of commands) {
  register(program);
}

// `tsrun --help` groups commands as `docker --help` does.
const COMMON = ['run', 'exec', 'ps', 'pull', 'push', 'images', 'login', 'logout', 'info', 'version'];
const MANAGEMENT = ['container', 'image', 'network', 'system'];
for (const cmd of program.commands) {
  const name = cmd.name();
  cmd.helpGroup(COMMON.includes(name) ? 'Common Commands:' : MANAGEMENT.includes(name) ? 'Management Commands:' : 'Commands:');
}

// `tsrun images | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

await program.parseAsync(process.argv);
