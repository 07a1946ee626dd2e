// Bundles src/main.ts into dist/vfio-isolate.mjs (the entry: argv parsing, the command table, help) plus chunks
// under dist/chunks/ that the entry imports on demand (each command's code, its libraries). koffi (native) stays
// external and is loaded lazily.
import { build } from 'esbuild';
import { chmodSync, readFileSync, rmSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: { 'vfio-isolate': 'src/main.ts' },
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  external: ['koffi'],
  banner: { js: '#!/usr/bin/env node' },
  define: { __VERSION__: JSON.stringify(pkg.version) },
  legalComments: 'none',
  charset: 'ascii',
  logLevel: 'warning',
});
chmodSync('dist/vfio-isolate.mjs', 0o755);
