/** Distribution: `npm pack` gives a tarball that installs globally into a prefix and runs. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';

const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string; name: string };

describe('npm pack → npm install -g → vfio-isolate', () => {
  it('installs into a temporary prefix and prints the package version', { timeout: 240_000 }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-pack-'));
    const npmEnv = {
      ...process.env,
      npm_config_loglevel: 'error',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
    };
    const out = execFileSync('npm', ['pack', '--pack-destination', dir, '--json'], {
      encoding: 'utf8',
      env: npmEnv,
    });
    const info = JSON.parse(out.slice(out.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    const files = info[0]!.files.map((f) => f.path);
    assert.ok(files.includes('dist/vfio-isolate.mjs'), 'the bundle is in the tarball');
    assert.ok(files.includes('man/vfio-isolate.1'), 'the man page is in the tarball');
    assert.ok(!files.some((f) => f.startsWith('src/') || f.startsWith('test/')), 'no sources or tests');
    const prefix = path.join(dir, 'prefix');
    execFileSync(
      'npm',
      ['install', '-g', '--prefix', prefix, '--prefer-offline', path.join(dir, info[0]!.filename)],
      {
        encoding: 'utf8',
        env: npmEnv,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const bin = path.join(prefix, 'bin', 'vfio-isolate');
    assert.equal(
      execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim(),
      `vfio-isolate ${pkg.version}`,
    );
    const help = execFileSync(bin, ['--help'], { encoding: 'utf8' });
    assert.match(help, /cpuset-modify/);
    assert.ok(
      fs.existsSync(path.join(prefix, 'share', 'man', 'man1', 'vfio-isolate.1')),
      'npm links the man page',
    );
  });
});
