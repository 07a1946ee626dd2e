/**
 * The lock admits one holder at a time under any interleaving: 8 processes take it 1,250 times each (10,000 in
 * all); every holder creates an exclusive marker while it holds the lock, so a second holder would fail to.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { buildSync } from 'esbuild';

const PROCS = 8;
const EACH = 1250;

test(`lock stress: ${PROCS} processes, ${PROCS * EACH} acquisitions, no double holder`, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-lockstress-'));
  const file = path.join(dir, 'lock');
  // The worker is bundled once (plain node starts much faster than node + tsx); koffi stays outside, found
  // through NODE_PATH.
  const worker = path.join(dir, 'lock-worker.mjs');
  buildSync({
    entryPoints: [path.join(import.meta.dirname, '../support/lock-worker.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: worker,
    external: ['koffi'],
    logLevel: 'error',
  });
  const nodePath = path.join(import.meta.dirname, '../../node_modules');
  const t0 = Date.now();
  const outs = await Promise.all(
    Array.from(
      { length: PROCS },
      () =>
        new Promise<string>((resolve, reject) => {
          const p = spawn(process.execPath, [worker, file, String(EACH)], {
            stdio: ['ignore', 'pipe', 'inherit'],
            env: { ...process.env, NODE_PATH: nodePath },
          });
          let out = '';
          p.stdout.on('data', (d: Buffer) => (out += d.toString()));
          p.on('error', reject);
          p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`worker exit ${code}`))));
        }),
    ),
  );
  const ms = Date.now() - t0;
  let total = 0;
  let doubles = 0;
  let loop = 0;
  for (const o of outs) {
    const m = /^ok (\d+) double (\d+) ms (\d+)$/m.exec(o);
    assert.ok(m, o);
    total += Number(m[1]);
    doubles += Number(m[2]);
    loop = Math.max(loop, Number(m[3]));
  }
  process.stderr.write(
    `lock stress: ${total} acquisitions by ${PROCS} processes in ${ms} ms (longest worker loop ${loop} ms, the rest is start-up), ${doubles} double holders\n`,
  );
  assert.equal(total, PROCS * EACH);
  assert.equal(doubles, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});
