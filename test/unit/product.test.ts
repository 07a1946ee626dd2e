/**
 * The shipped product holds no test support: no simulator, no fault injection, no environment switch that swaps the
 * kernel or skips the root check. Checked on the bundle that `npm run build` makes, and on the source it is built
 * from (so that a marker renamed in one place is still caught in the other).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { buildSync, type Metafile } from 'esbuild';

const REPO = path.resolve(import.meta.dirname, '../..');
const MARKERS = [
  'class SimFs',
  'VFIO_ISOLATE_ROOT',
  'VFIO_ISOLATE_FAULT',
  'VFIO_ISOLATE_SYSTEMCTL',
  'injected failure',
  // fault injection kills its own process (a timeout's killSignal for a child, e.g. systemctl, is the product's)
  'process.kill(process.pid',
  '.sim-log',
];

function files(dir: string, ext: RegExp): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? files(path.join(dir, e.name), ext) : ext.test(e.name) ? [path.join(dir, e.name)] : [],
    );
}

describe('the shipped product', () => {
  it('dist/ (as built) contains no simulator and no fault injection', () => {
    const b = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: REPO, encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
    const built = files(path.join(REPO, 'dist'), /\.(m?js|cjs)$/);
    assert.ok(built.length > 0, 'the build wrote dist/');
    for (const f of built) {
      const text = fs.readFileSync(f, 'utf8');
      for (const m of MARKERS) assert.ok(!text.includes(m), `${path.relative(REPO, f)} contains "${m}"`);
    }
  });

  it('a node without process.getBuiltinModule (before 20.16) gets one line and exit 1, not an error from a command', () => {
    const old = ['--import', 'data:text/javascript,delete process.getBuiltinModule', '--import', 'tsx'];
    for (const argv of [['--version'], ['-n', 'restore', '/nonexistent/journal']]) {
      const r = spawnSync(process.execPath, [...old, 'src/main.ts', ...argv], {
        cwd: REPO,
        encoding: 'utf8',
      });
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `vfio-isolate: needs Node.js 20.19 or later (this is ${process.version})\n`);
    }
  });

  it('src/ names none of the test switches', () => {
    for (const f of files(path.join(REPO, 'src'), /\.ts$/)) {
      const text = fs.readFileSync(f, 'utf8');
      for (const m of MARKERS) assert.ok(!text.includes(m), `${path.relative(REPO, f)} contains "${m}"`);
    }
  });
});

/** The modules a chunk loads before it runs: its own inputs and those of the chunks it imports statically. */
function staticClosure(outputs: Metafile['outputs'], start: string): Set<string> {
  const inputs = new Set<string>();
  const seen = new Set<string>();
  const stack = [start];
  while (stack.length) {
    const o = stack.pop()!;
    if (seen.has(o)) continue;
    seen.add(o);
    for (const i of Object.keys(outputs[o]!.inputs)) inputs.add(i);
    for (const imp of outputs[o]!.imports)
      if (imp.kind === 'import-statement' && !imp.external) stack.push(imp.path);
  }
  return inputs;
}

describe('start-up loads only the command table', () => {
  const r = buildSync({
    entryPoints: { 'vfio-isolate': path.join(REPO, 'src/main.ts') },
    absWorkingDir: REPO,
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    outdir: path.join(REPO, '.test-build/split'),
    outExtension: { '.js': '.mjs' },
    external: ['koffi'],
    metafile: true,
    write: false,
    logLevel: 'error',
  });
  const outputs = r.metafile.outputs;
  const outputOf = (entry: string): string =>
    Object.entries(outputs).find(([, o]) => o.entryPoint === entry)![0];

  it('--help, --version and usage errors: the entry loads no handler and no library', () => {
    const loaded = [...staticClosure(outputs, outputOf('src/main.ts'))];
    assert.ok(loaded.includes('src/cli/table.ts'), 'the table is loaded');
    for (const m of loaded) {
      assert.ok(!m.startsWith('src/commands/'), `${m} is loaded at start-up`);
      assert.ok(!m.includes('node_modules'), `${m} is loaded at start-up`);
      // src/report/log.ts is the output itself (pipe-safe stream writers, colour): help needs it, nothing else of report/
      if (m === 'src/report/log.ts') continue;
      assert.ok(!/src\/(steps|report|libvirt)\/|src\/profile\.ts|src\/kernel\/kernel\.ts/.test(m), `${m}`);
    }
  });

  it('help CMD and completion scripts load their own module and the table, not the other commands', () => {
    for (const entry of ['src/commands/help.ts', 'src/commands/completion.ts']) {
      const loaded = [...staticClosure(outputs, outputOf(entry))];
      for (const m of loaded) {
        assert.ok(!m.includes('node_modules'), `${entry} loads ${m}`);
        assert.ok(!/^src\/commands\/(?!help|completion)/.test(m), `${entry} loads ${m}`);
      }
    }
  });

  it('the entry loads neither the CPU notation nor the errno explanations (help cpus and errors load them)', () => {
    const loaded = [...staticClosure(outputs, outputOf('src/main.ts'))];
    for (const m of ['src/cpus/notation.ts', 'src/cpus/cpuset.ts', 'src/kernel/errors.ts'])
      assert.ok(!loaded.includes(m), `${m} is loaded at start-up`);
  });

  it('a report command alone (completion, help cpus, status) loads no journal, lock, executor or valibot', () => {
    const loaded = [...staticClosure(outputs, outputOf('src/cli/report-run.ts'))];
    assert.ok(loaded.includes('src/cli/report-run.ts'));
    for (const m of loaded) {
      // the kernel layer and the plan state load on demand, for handlers that read the machine
      assert.ok(!/src\/steps\/|src\/kernel\/|valibot|src\/commands\//.test(m), m);
    }
  });

  it("restore, release and reapply (a hook's 'release end') load none of isolate's own code, measure or profiles", () => {
    for (const entry of ['src/commands/restore.ts', 'src/commands/release.ts', 'src/commands/drift.ts']) {
      const loaded = [...staticClosure(outputs, outputOf(entry))];
      assert.ok(loaded.includes('src/commands/journal-restore.ts') || entry.endsWith('drift.ts'), entry);
      for (const m of loaded)
        assert.ok(
          !/^src\/commands\/(isolate|measure|status|status-collect)\.ts$|^src\/measure\/|^src\/profile\.ts$|smol-toml|^src\/report\/(status|topology)-view\.ts$/.test(
            m,
          ),
          `${entry} loads ${m}`,
        );
    }
  });

  it("isolate loads measure's code only for --measure", () => {
    const loaded = [...staticClosure(outputs, outputOf('src/commands/isolate.ts'))];
    assert.ok(loaded.includes('src/commands/host-set.ts'));
    for (const m of loaded)
      assert.ok(!/^src\/commands\/(isolate-)?measure\.ts$|^src\/measure\//.test(m), `isolate loads ${m}`);
    const measuring = [...staticClosure(outputs, outputOf('src/commands/isolate-measure.ts'))];
    assert.ok(measuring.includes('src/commands/measure.ts'));
  });

  it('no chunk imports node:fs, node:util or node:child_process as an ES module (their facades cost every run)', () => {
    for (const [file, o] of Object.entries(outputs))
      for (const imp of o.imports)
        assert.ok(
          !(imp.external && /^(node:)?(fs|fs\/promises|util|child_process)$/.test(imp.path)),
          `${file} imports ${imp.path}`,
        );
  });

  it("koffi.ts shares the kernel layer's chunk (one file fewer for every command that changes something)", () => {
    const chunkOf = (input: string): string => Object.entries(outputs).find(([, o]) => input in o.inputs)![0];
    assert.equal(chunkOf('src/kernel/koffi.ts'), chunkOf('src/kernel/kernel.ts'));
  });

  it('a completion script loads no kernel code (only __complete does, on demand)', () => {
    const loaded = [...staticClosure(outputs, outputOf('src/commands/completion.ts'))];
    assert.ok(loaded.includes('src/cli/completion.ts'));
    for (const m of loaded) assert.ok(!m.startsWith('src/kernel/'), `completion loads ${m}`);
  });

  it('every command of the table loads its handler, of the kind the table says', async () => {
    const { COMMANDS } = await import('../../src/cli/table.ts');
    const all = (list: typeof COMMANDS, prefix = ''): [string, (typeof COMMANDS)[number]][] =>
      list.flatMap((c) => [
        [`${prefix}${c.name}`, c] as [string, (typeof COMMANDS)[number]],
        ...all(c.subcommands ?? [], `${prefix}${c.name} `),
      ]);
    let n = 0;
    for (const [name, spec] of all(COMMANDS)) {
      if (!spec.kind) {
        assert.ok(spec.subcommands?.length, `${name} has neither a handler nor subcommands`);
        continue;
      }
      const h = await spec.load!();
      assert.equal(h?.kind, spec.kind, name);
      n++;
    }
    assert.ok(n >= 20, `${n} commands with handlers`);
  });
});
