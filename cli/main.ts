// tsrun's entry point. Each command lives in its own cli/<command>.ts, which declares its flags
// and imports the code under src/ only when it runs. Only the module of the command being run
// is even evaluated (all of them for help and completion): start-up time is `run`'s budget.
// What users run is this file bundled with everything it imports into one CommonJS script,
// dist/tsrun-main.cjs (scripts/bundle.mjs): Node loads one file instead of ~90 ES modules. The
// `tsrun` command, dist/tsrun.cjs, runs that bundle through V8's code cache (cli/launcher.ts).
import { Command, type CommanderError } from 'commander';
import { collect, report } from './common.js';
import { commandWord } from './command-word.js';
import { needsUserns, reexecInUserns } from '../src/rootless.js';

const VERSION = 'tsrun 0.1.0';

const program = new Command('tsrun')
  .description('A daemonless, Docker-like container engine')
  .version(VERSION, '-v, --version')
  .option('--root <dir>', 'storage root: images, layers, containers (env TSRUN_ROOT)', undefined)
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

type Register = (program: Command) => void;
type Loader = () => Promise<{ register: Register }>;

/**
 * cli module → the commands it registers, in the order `tsrun --help` lists them. The imports are
 * written out (not built from the name) so the bundler can see them: each one's code is in
 * dist/tsrun.cjs but runs only when its command does.
 */
const MODULES: Array<[load: Loader, commands: string[]]> = [
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

// The bundle is a CommonJS script, which cannot await at its top level.
async function main(): Promise<void> {
  // A test hook left set by mistake would make every container without what it names: said, always.
  if (process.env.TSRUN_TEST_OMIT_STEPS) {
    process.stderr.write(`tsrun: warning: TSRUN_TEST_OMIT_STEPS=${process.env.TSRUN_TEST_OMIT_STEPS} is set: containers are made without those launch steps (a test hook)\n`);
  }
  const word = commandWord(process.argv.slice(2));
  // `tsrun --version` alone needs none of the commands (scripts call it to probe for tsrun).
  const only = process.argv.slice(2);
  if (only.length === 1 && (only[0] === '--version' || only[0] === '-v')) {
    process.stdout.write(`${VERSION}\n`);
    process.exit(0);
  }
  // Rootless: most commands run again as root of the user's own user namespace (src/rootless.ts).
  if (needsUserns(word)) {
    try {
      await reexecInUserns();
    } catch (err) {
      process.exit(report(err));
    }
  }
  // Completion describes every command, so it needs them all.
  const wanted = word === 'completion' ? [] : MODULES.filter(([, names]) => word !== undefined && names.includes(word));
  for (const [load] of wanted.length > 0 ? wanted : MODULES) {
    const { register } = await load();
    register(program);
  }

  // `tsrun --help` groups commands as `docker --help` does.
  const COMMON = ['run', 'exec', 'ps', 'build', 'pull', 'push', 'images', 'login', 'logout', 'info', 'version'];
  const MANAGEMENT = ['builder', 'container', 'image', 'network', 'system', 'volume'];
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
}

void main();
