/**
 * What each command makes node load before it runs: the files of dist/ (the entry, then the chunks each imports
 * statically, then the command's module and the runner's), how many static imports node resolves among them, and
 * their bytes. A fresh process pays for each file and each import (under TCG a few ms per import; see bench/README.md,
 * the cold part). Builds with scripts/build.mjs into the cache; `--rev REV` builds that revision's sources instead.
 *
 *   node --import tsx bench/chunks.ts [--rev REV] [COMMAND...]
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, cacheSubdir } from '../test/vm/cache.ts';
import { loadedBy, type Meta } from './chunks-core.ts';
import { archiveSources, buildProduct } from './guest.ts';

const { values, positionals } = parseArgs({
  options: { rev: { type: 'string' } },
  allowPositionals: true,
});
const dir = join(cacheSubdir('bench'), `chunks-${values.rev ?? 'tree'}`.replace(/[^\w.-]+/g, '-'));
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
let root = REPO_ROOT;
if (values.rev) {
  root = join(dir, 'src-tree');
  mkdirSync(root);
  archiveSources(values.rev, root);
}
const metafile = join(dir, 'meta.json');
buildProduct(root, join(dir, 'dist'), ['--metafile', metafile]);
const meta = JSON.parse(readFileSync(metafile, 'utf8')) as Meta;
const commands =
  positionals.length > 0
    ? positionals
    : ['--version', 'restore', 'release', 'irq-affinity', 'isolate', 'move-tasks', 'status'];
process.stdout.write(
  `${values.rev ?? 'working tree'}: files, static imports, KB loaded before the command runs\n`,
);
for (const c of commands) {
  let l: ReturnType<typeof loadedBy>;
  try {
    l = loadedBy(meta, c);
  } catch (e) {
    process.stdout.write(`  ${c.padEnd(14)} -: ${(e as Error).message}\n`);
    continue;
  }
  process.stdout.write(
    `  ${c.padEnd(14)} ${String(l.files).padStart(3)} files ${String(l.imports).padStart(4)} imports ${(l.bytes / 1024).toFixed(0).padStart(5)} KB\n`,
  );
}
