// npm run install-global: install vfio-isolate for root to run, as a copy owned by root (never a link to this
// clone). Packs the clone into a tarball (prepack builds dist/ and the man page), then installs that tarball with
// `npm install -g` (through sudo when not root). --ignore-scripts: vfio-isolate has no install script, and koffi's
// only checks that its prebuilt binary loads (it does on Linux x64/arm64), so nothing needs to run at install time.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function run(cmd, args) {
  process.stderr.write(`$ ${[cmd, ...args].join(' ')}\n`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.error) {
    process.stderr.write(`install-global: ${cmd}: ${r.error.message}\n`);
    process.exit(1);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const dir = mkdtempSync(join(tmpdir(), 'vfio-isolate-pack-'));
try {
  run('npm', ['pack', '--pack-destination', dir]);
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (!tgz) throw new Error(`npm pack wrote no tarball into ${dir}`);
  const install = ['npm', 'install', '-g', '--ignore-scripts', join(dir, tgz)];
  const root = process.geteuid?.() === 0;
  run(root ? install[0] : 'sudo', root ? install.slice(1) : install);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
