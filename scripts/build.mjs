// Bundles src/main.ts into dist/vfio-isolate.mjs (the entry: argv parsing, the command table, help) plus chunks
// under dist/chunks/ that the entry imports on demand (each command's code, its libraries). koffi (native) stays
// external and is loaded lazily.
//
// The benchmarks build other trees the same way (bench/guest.ts: the cold runs of this tree and of a baseline
// revision): --root DIR (the tree with src/ and package.json; default: here), --outdir DIR (default: dist under the
// root), --node-path DIR (where a tree without its own node_modules finds valibot and smol-toml), --metafile FILE
// (esbuild's account of the chunks and what each imports, for bench/chunks.ts).
import { build } from 'esbuild';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: '.' },
    outdir: { type: 'string' },
    'node-path': { type: 'string' },
    metafile: { type: 'string' },
  },
});
const root = resolve(values.root);
const outdir = resolve(values.outdir ?? join(root, 'dist'));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { 'vfio-isolate': 'src/main.ts' },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outdir,
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  external: ['koffi'],
  ...(values['node-path'] ? { nodePaths: [resolve(values['node-path'])] } : {}),
  banner: { js: '#!/usr/bin/env node' },
  define: { __VERSION__: JSON.stringify(pkg.version) },
  legalComments: 'none',
  charset: 'ascii',
  logLevel: 'warning',
  metafile: values.metafile !== undefined,
});
if (values.metafile) writeFileSync(values.metafile, JSON.stringify(result.metafile));
chmodSync(join(outdir, 'vfio-isolate.mjs'), 0o755);
