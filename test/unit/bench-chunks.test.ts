import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadedBy, type Meta } from '../../bench/chunks-core.ts';

/** An output of the metafile: its bytes, its entry point and the outputs it imports statically (and dynamically). */
const out = (bytes: number, entryPoint: string | undefined, statics: string[], dynamics: string[] = []) => ({
  bytes,
  ...(entryPoint ? { entryPoint } : {}),
  imports: [
    ...statics.map((path) => ({ path, kind: 'import-statement' })),
    ...dynamics.map((path) => ({ path, kind: 'dynamic-import' })),
    { path: 'node:path', kind: 'import-statement', external: true },
  ],
});

const meta: Meta = {
  outputs: {
    'main.mjs': out(100, 'src/main.ts', ['table.mjs'], ['restore.mjs', 'execute.mjs', 'status.mjs']),
    'table.mjs': out(50, undefined, []),
    'restore.mjs': out(10, 'src/commands/restore.ts', ['shared.mjs', 'journal.mjs']),
    'execute.mjs': out(20, 'src/cli/execute.ts', ['shared.mjs']),
    'shared.mjs': out(5, undefined, ['journal.mjs']),
    'journal.mjs': out(7, undefined, []),
    'status.mjs': out(1000, 'src/commands/status.ts', []),
  },
};

describe('bench/chunks: what a command loads', () => {
  it('the entry and its on-demand modules, each file once; every static import counted; externals and dynamic imports not', () => {
    assert.deepEqual(loadedBy(meta, 'restore'), { files: 6, imports: 5, bytes: 192 });
    assert.deepEqual(loadedBy(meta, '--version'), { files: 2, imports: 1, bytes: 150 });
  });

  it('a command without a list, or a module that is no entry of the bundle, is an error', () => {
    assert.throws(() => loadedBy(meta, 'frobnicate'), /no list of modules/);
    assert.throws(() => loadedBy(meta, 'release'), /no entry of the bundle/);
  });
});
