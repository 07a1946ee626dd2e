/** Distribution: `npm pack` gives a tarball that installs globally into a prefix and runs. */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';

const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string; name: string };

describe('npm pack → npm install -g → vfio-isolate', () => {
  it(
    'installs into a temporary prefix, as the README says, without warnings, and prints the package version',
    { timeout: 240_000 },
    () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-pack-'));
      try {
        packAndInstall(dir);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

/** The README's install, into a temporary prefix under `dir`, and the installed tool's --version and --help. */
function packAndInstall(dir: string): void {
  const npmEnv = {
    ...process.env,
    npm_config_loglevel: 'warn',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    npm_config_update_notifier: 'false',
  };
  const out = execFileSync('npm', ['pack', '--pack-destination', dir, '--json'], {
    encoding: 'utf8',
    env: npmEnv,
  });
  const info = JSON.parse(out.slice(out.indexOf('['))) as {
    filename: string;
    files: { path: string }[];
  }[];
  const files = info[0]!.files.map((f) => f.path);
  assert.ok(files.includes('dist/vfio-isolate.mjs'), 'the bundle is in the tarball');
  assert.ok(files.includes('man/vfio-isolate.1'), 'the man page is in the tarball');
  assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/')), 'no sources or tests');
  const packed = JSON.parse(
    execFileSync('tar', ['-xOzf', path.join(dir, info[0]!.filename), 'package/package.json'], {
      encoding: 'utf8',
    }),
  ) as { scripts?: Record<string, string> };
  assert.deepEqual(
    Object.keys(packed.scripts ?? {}).filter((s) => /^(pre|post)?(install|prepare)$/.test(s)),
    [],
    'no install-time script (the tarball has no scripts/ to run one with)',
  );
  const prefix = path.join(dir, 'prefix');
  // The README's command: sudo npm install -g --ignore-scripts ./vfio-isolate-*.tgz (here into a prefix).
  const r = spawnSync(
    'npm',
    [
      'install',
      '-g',
      '--ignore-scripts',
      '--prefix',
      prefix,
      '--prefer-offline',
      path.join(dir, info[0]!.filename),
    ],
    { encoding: 'utf8', env: npmEnv },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'no npm warnings');
  const bin = path.join(prefix, 'bin', 'vfio-isolate');
  assert.equal(execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim(), `vfio-isolate ${pkg.version}`);
  const help = execFileSync(bin, ['--help'], { encoding: 'utf8' });
  assert.match(help, /cpuset-modify/);
  assert.ok(
    fs.existsSync(path.join(prefix, 'share', 'man', 'man1', 'vfio-isolate.1')),
    'npm links the man page',
  );
}
