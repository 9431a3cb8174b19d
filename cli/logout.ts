// tsrun logout [SERVER]: forget the credentials stored for a registry (default: Docker Hub),
// erasing them from the credential helper that holds them, if one does.
import type { Command } from 'commander';
import { action } from './common.js';
import { writeOut } from './out.js';

export function register(program: Command): void {
  program
    .command('logout')
    .description('Log out from a registry (default: Docker Hub)')
    .argument('[server]', 'registry host[:port]')
    .action(
      action(async (server: string | undefined) => {
        const { logout } = await import('../src/registry-client/login.js');
        const r = await logout(server);
        writeOut(r.removed ? `Removing login credentials for ${r.registry}\n` : `Not logged in to ${r.registry}\n`);
      }),
    );
}
