/**
 * On the host, before the guests boot: install the packed tarball the way the README says (`npm pack`, then
 * `npm install -g --ignore-scripts` of the .tgz), into a prefix under the repository, which the guest sees
 * read-write at the same path. No kernel state is touched: it is npm writing files under the repository.
 * `test/vm/guest/libvirt-hook.test.ts` installs a libvirt hook from it in the guest and runs the hook as libvirtd
 * would. The prefix is root-owned when the suite runs as root (it must: virtiofsd needs root), as a real
 * `sudo npm install -g` would make it.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '../..');
/** Where the guest test finds the install (same path in the guest). */
export const TARBALL_PREFIX = path.join(REPO, '.test-tmp', 'guest-install');

/** Pack and install; returns a line for the suite's log. Throws with npm's output when it fails. */
export function prepareTarballInstall(): string {
  const t0 = Date.now();
  fs.rmSync(TARBALL_PREFIX, { recursive: true, force: true });
  fs.mkdirSync(TARBALL_PREFIX, { recursive: true, mode: 0o755 });
  fs.chmodSync(path.dirname(TARBALL_PREFIX), 0o755);
  fs.chmodSync(TARBALL_PREFIX, 0o755);
  const env = {
    ...process.env,
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    npm_config_update_notifier: 'false',
  };
  const packDir = path.join(TARBALL_PREFIX, 'pack');
  fs.mkdirSync(packDir);
  const out = execFileSync('npm', ['pack', '--pack-destination', packDir, '--json'], {
    cwd: REPO,
    encoding: 'utf8',
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const info = JSON.parse(out.slice(out.indexOf('['))) as { filename: string }[];
  const tgz = path.join(packDir, info[0]!.filename);
  execFileSync(
    'npm',
    ['install', '-g', '--ignore-scripts', '--prefer-offline', '--prefix', TARBALL_PREFIX, tgz],
    { cwd: REPO, encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return `vm: installed ${info[0]!.filename} into ${TARBALL_PREFIX} (npm pack + npm install -g, ${((Date.now() - t0) / 1000).toFixed(1)} s)`;
}
