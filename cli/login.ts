// tsrun login [-u user] [-p password | --password-stdin] [SERVER]
// Checks the credentials against the registry, then stores them as docker would: in the
// credential helper that ~/.docker/config.json ($DOCKER_CONFIG) names, else in that file, mode 0600.
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { TsrunError } from '../src/errors.js';
import { action, globalOptions } from './common.js';
import { warnLine } from './pull.js';
import { writeOut, writeErr, stderrStream } from './out.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Asks on the terminal; the password is not echoed. */
async function prompt(question: string, secret: boolean): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: stderrStream(), terminal: true });
  if (secret) {
    // Write the question ourselves, then swallow readline's echo of what is typed.
    writeErr(question);
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => {};
  }
  return new Promise((resolve) => {
    rl.question(secret ? '' : question, (answer) => {
      rl.close();
      if (secret) writeErr('\n');
      resolve(answer);
    });
  });
}

interface LoginFlags {
  username?: string;
  password?: string;
  passwordStdin: boolean;
}

export function register(program: Command): void {
  program
    .command('login')
    .description('Log in to a registry (default: Docker Hub)')
    .argument('[server]', 'registry host[:port]')
    .option('-u, --username <user>', 'user name')
    .option('-p, --password <password>', 'password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from standard input', false)
    .action(
      action(async (server: string | undefined, flags: LoginFlags, cmd: Command) => {
        const g = globalOptions(cmd);
        if (flags.password !== undefined && flags.passwordStdin) {
          throw new TsrunError('EINVAL_FLAG', '--password and --password-stdin are mutually exclusive');
        }
        let username = flags.username;
        let password = flags.password;
        if (flags.passwordStdin) {
          if (!username) throw new TsrunError('EINVAL_FLAG', 'Must provide --username with --password-stdin');
          password = await readStdin();
        } else if (password !== undefined) {
          warnLine('Using --password via the CLI is insecure. Use --password-stdin.');
        }
        const interactive = Boolean(process.stdin.isTTY);
        if (!username) {
          if (!interactive) throw new TsrunError('EINVAL_FLAG', 'cannot ask for a user name: standard input is not a terminal (use -u)');
          username = (await prompt('Username: ', false)).trim();
        }
        if (password === undefined) {
          if (!interactive) throw new TsrunError('EINVAL_FLAG', 'cannot ask for a password: standard input is not a terminal (use --password-stdin)');
          password = await prompt('Password: ', true);
        }
        if (!username) throw new TsrunError('EINVAL_FLAG', 'username is empty');
        if (!password) throw new TsrunError('EINVAL_FLAG', 'password is empty');
        const { login } = await import('../src/registry-client/login.js');
        const r = await login(server, { username, password }, { insecureRegistries: g.insecureRegistry, onWarning: warnLine });
        if (!r.verified) warnLine(`${r.registry} asks for no authentication; the credentials were stored anyway`);
        const where = r.store.kind === 'helper' ? `docker-credential-${r.store.helper} (the "${r.store.setting}" of ${r.path})` : r.path;
        if (r.store.kind === 'file') warnLine(`the password is stored unencrypted in ${r.path}; configure a credential helper ("credsStore") to keep it elsewhere`);
        writeOut(`Credentials saved in ${where}\nLogin Succeeded\n`);
      }),
    );
}
