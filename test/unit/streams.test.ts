/**
 * Output streams: a reader that goes away (`vfio-isolate -n isolate L1 | head -1`) ends the output quietly, and
 * colour is decided for stdout and stderr separately (only on a terminal; NO_COLOR and FORCE_COLOR honoured).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../src/cli/run.ts';
import { COMMANDS } from '../../src/cli/table.ts';
import { pipeSafeWriter, useColour, type Streams } from '../../src/report/log.ts';
import { buildFixture, removeFixture } from '../fixtures/build.ts';
import { testBundle } from '../support/bundle.ts';
import { simOptions } from '../support/sim.ts';

/** A stream double that fails every write asynchronously with `code`, as a pipe whose reader closed does. */
class FailingStream extends EventEmitter {
  writes = 0;
  constructor(private readonly code: string) {
    super();
  }
  write(_s: string): boolean {
    this.writes++;
    const e = Object.assign(new Error(`write ${this.code}`), { code: this.code, syscall: 'write' });
    process.nextTick(() => this.emit('error', e));
    return false;
  }
}

describe('pipeSafeWriter', () => {
  it('EPIPE: no throw, nothing reported, later writes dropped', async () => {
    const s = new FailingStream('EPIPE');
    const reported: string[] = [];
    const write = pipeSafeWriter(s, (l) => reported.push(l));
    write('line 1\n');
    await new Promise((r) => setImmediate(r));
    write('line 2\n');
    write('line 3\n');
    await new Promise((r) => setImmediate(r));
    assert.equal(s.writes, 1, 'nothing is written after the reader went away');
    assert.deepEqual(reported, []);
  });

  it('another write error (EIO) is said once and sets exit status 1', async () => {
    const saved = process.exitCode;
    try {
      const s = new FailingStream('EIO');
      const reported: string[] = [];
      const write = pipeSafeWriter(s, (l) => reported.push(l));
      write('a\n');
      write('b\n');
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(reported, ['vfio-isolate: cannot write the output: EIO\n']);
      assert.equal(process.exitCode, 1);
    } finally {
      process.exitCode = saved;
    }
  });
});

describe('the built CLI writing into a pipe closed before it writes', () => {
  let root = '';
  before(() => {
    const b = spawnSync(process.execPath, ['scripts/build.mjs'], { encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
    root = buildFixture('ryzen-5950x');
  });
  after(() => removeFixture(root));

  /** Runs the bundle with stdout (and with `both`, stderr too) a pipe whose read end is closed at once. */
  function run(
    argv: string[],
    both: boolean,
  ): Promise<{ code: number | null; signal: string | null; stderr: string }> {
    // the product for what needs no machine; the test entry (same runner, a fake machine) for the rest
    const onMachine = !['--help', 'help', 'completion'].includes(argv[0]!);
    const entry = onMachine ? testBundle() : path.resolve('dist/vfio-isolate.mjs');
    const child = spawn(process.execPath, [entry, ...argv], {
      env: { ...process.env, ...(onMachine ? { VFIO_ISOLATE_ROOT: root } : {}), NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    let stderr = '';
    if (both) child.stderr.destroy();
    else child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal: signal ?? null, stderr })),
    );
  }

  for (const argv of [
    ['-n', 'isolate', 'L1'],
    ['topology'],
    ['--help'],
    ['help', 'cpus'],
    ['completion', 'bash'],
    ['-n', 'cpuset-modify', '--cpus', 'C0-7', '/system.slice'],
  ]) {
    it(`${argv.join(' ')} | (closed): exit 0, no stack trace`, async () => {
      const r = await run(argv, false);
      // warnings may be said (irqbalance runs on the fixture); a stack trace or an EPIPE message may not
      assert.doesNotMatch(r.stderr, /EPIPE|Error|^\s+at /m);
      assert.deepEqual([r.code, r.signal], [0, null]);
    });
  }

  it('-n isolate L1 with stdout and stderr closed (2>&1 | head -1): exit 0', async () => {
    const r = await run(['-v', '-n', 'isolate', 'L1'], true);
    assert.deepEqual([r.code, r.signal], [0, null]);
  });
});

describe('colour per stream', () => {
  const tty = (out: boolean, err: boolean): Streams => ({
    out: () => {},
    err: () => {},
    isTTY: out,
    errIsTTY: err,
  });

  it('useColour: per stream, TERM=dumb, NO_COLOR, FORCE_COLOR', () => {
    const cases: [Streams, NodeJS.ProcessEnv, boolean, boolean][] = [
      // streams, env, colour on stdout, colour on stderr
      [tty(true, false), {}, true, false],
      [tty(false, true), {}, false, true],
      [tty(true, true), {}, true, true],
      [tty(false, false), {}, false, false],
      [tty(true, true), { TERM: 'dumb' }, false, false],
      [tty(true, true), { NO_COLOR: '1' }, false, false],
      [tty(true, true), { NO_COLOR: '' }, true, true],
      [tty(false, false), { FORCE_COLOR: '1' }, true, true],
      [tty(false, false), { FORCE_COLOR: '' }, false, false],
      [tty(true, true), { FORCE_COLOR: '0' }, false, false],
      [tty(true, true), { FORCE_COLOR: 'false' }, false, false],
      [tty(false, false), { FORCE_COLOR: '3', NO_COLOR: '1' }, true, true],
    ];
    for (const [s, env, out, err] of cases) {
      const label = `${JSON.stringify(env)} out tty ${s.isTTY}, err tty ${s.errIsTTY}`;
      assert.equal(useColour(s, env, 'out'), out, `stdout: ${label}`);
      assert.equal(useColour(s, env, 'err'), err, `stderr: ${label}`);
    }
  });

  /** The v1 flag -ce on a v2 machine warns on stderr; topology colours its report on stdout. */
  async function capture(argv: string[], out: boolean, err: boolean, env: Record<string, string> = {}) {
    const root = buildFixture('ryzen-5950x');
    try {
      let stdout = '';
      let stderr = '';
      const full = { VFIO_ISOLATE_ROOT: root, TERM: 'xterm', ...env };
      const code = await runCli(argv, {
        table: COMMANDS,
        env: full,
        ...simOptions(full),
        streams: {
          out: (s) => void (stdout += s),
          err: (s) => void (stderr += s),
          isTTY: out,
          errIsTTY: err,
        },
      });
      return { code, stdout, stderr };
    } finally {
      removeFixture(root);
    }
  }
  const WARN = ['-n', 'cpuset-modify', '-ce', '--cpus', 'C0-7', '/system.slice'];

  it('stdout a terminal, stderr redirected: the warning on stderr has no escapes', async () => {
    const r = await capture(WARN, true, false);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning:/);
    assert.ok(!r.stderr.includes('\x1b'), JSON.stringify(r.stderr));
    const t = await capture(['topology'], true, false);
    assert.ok(t.stdout.includes('\x1b['), 'the report on the terminal is coloured');
  });

  it('stderr a terminal, stdout redirected: the warning is coloured, the report is not', async () => {
    const r = await capture(WARN, false, true);
    assert.ok(r.stderr.includes('\x1b[33mwarning:\x1b[0m'), JSON.stringify(r.stderr));
    const t = await capture(['topology'], false, true);
    assert.ok(!t.stdout.includes('\x1b'), 'no escapes in a redirected stdout');
  });

  it('NO_COLOR on two terminals: no escapes anywhere; FORCE_COLOR into two files: colour on both', async () => {
    const plain = await capture(WARN, true, true, { NO_COLOR: '1' });
    assert.ok(!plain.stderr.includes('\x1b') && !plain.stdout.includes('\x1b'));
    const forced = await capture(WARN, false, false, { FORCE_COLOR: '1' });
    assert.ok(forced.stderr.includes('\x1b[33m'), JSON.stringify(forced.stderr));
    const t = await capture(['topology'], false, false, { FORCE_COLOR: '1' });
    assert.ok(t.stdout.includes('\x1b['));
  });
});
