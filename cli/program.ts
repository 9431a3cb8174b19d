// What every tsrun command line runs: the program's global options, loading the command
// modules it is given, and parsing. cli/main.ts gives it every command module (help,
// completion); scripts/bundle.mjs makes one bundle per command word that gives it only the
// modules of that word, so that `tsrun ps` reads, compiles and runs none of `tsrun build`.
import { Command, type CommanderError } from 'commander';
import { collect, report } from './common.js';
import { commandWord, versionOnly } from './command-word.js';
import { needsUserns, reexecInUserns } from '../src/rootless.js';
import { stdioStreamsInUse, writeOut, writeErr } from './out.js';

export const VERSION = 'tsrun 0.1.0';

const program = new Command('tsrun')
  .description('A daemonless, Docker-like container engine')
  .version(VERSION, '-v, --version')
  .option('--root <dir>', 'storage root: images, layers, containers (env TSRUN_ROOT)', undefined)
  .option('--insecure-registry <host[:port]|cidr>', 'allow plain HTTP / unverified TLS for this registry (repeatable)', collect, [])
  .option('-D, --debug', 'show the causes of errors', false)
  .enablePositionalOptions()
  .showHelpAfterError("See 'tsrun --help', or 'tsrun <command> --help'.")
  // Errors read like every other tsrun error: "tsrun: unknown option '--bogus'".
  // Help and usage errors go out as all tsrun's text does (out.ts), not through Node's streams.
  .configureOutput({ writeOut, writeErr, outputError: (text, write) => write(`tsrun: ${text.replace(/^error: /, '')}`) })
  // docker's exit status for a usage error is 125, not commander's 1.
  .exitOverride((err: CommanderError) => {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
      process.exit(0);
    }
    process.exit(125);
  });

type Register = (program: Command) => void;
export type Loader = () => Promise<{ register: Register }>;

/** A module's loader and the commands it registers, in the order `tsrun --help` lists them. */
export type CommandModule = [load: Loader, commands: string[]];

/** Runs the command line with these command modules (the bundle cannot await at its top level). */
export async function runTsrun(modules: CommandModule[]): Promise<void> {
  // A test hook left set by mistake would make every container without what it names: said, always.
  if (process.env.TSRUN_TEST_OMIT_STEPS) {
    writeErr(`tsrun: warning: TSRUN_TEST_OMIT_STEPS=${process.env.TSRUN_TEST_OMIT_STEPS} is set: containers are made without those launch steps (a test hook)\n`);
  }
  const word = commandWord(process.argv.slice(2));
  // `tsrun --version` needs none of the commands (scripts call it to probe for tsrun).
  if (versionOnly(process.argv.slice(2))) {
    writeOut(`${VERSION}\n`);
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
  const wanted = word === 'completion' ? [] : modules.filter(([, names]) => word !== undefined && names.includes(word));
  for (const [load] of wanted.length > 0 ? wanted : modules) {
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

  await program.parseAsync(process.argv);
  // The command is done. Left to end by itself, Node would first tear its heap and isolate down
  // (~6 ms of a `run` on a VM, interleaved A/B); exit now instead, unless Node's stdout or stderr
  // stream is in use (out.ts): a pipe's stream may still hold output, which exit would drop.
  // Nothing else is left pending by then: a helper that exited as we did is reaped by init.
  if (!stdioStreamsInUse()) process.exit();
}

