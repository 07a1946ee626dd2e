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

const PROCS = 8;
const EACH = 1250;

test(`lock stress: ${PROCS} processes, ${PROCS * EACH} acquisitions, no double holder`, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-lockstress-'));
  const file = path.join(dir, 'lock');
  const worker = path.join(import.meta.dirname, '../support/lock-worker.ts');
  const t0 = Date.now();
  const outs = await Promise.all(
    Array.from(
      { length: PROCS },
      () =>
        new Promise<string>((resolve, reject) => {
          const p = spawn(process.execPath, ['--import', 'tsx', worker, file, String(EACH)], {
            stdio: ['ignore', 'pipe', 'inherit'],
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
  for (const o of outs) {
    const m = /^ok (\d+) double (\d+)$/m.exec(o);
    assert.ok(m, o);
    total += Number(m[1]);
    doubles += Number(m[2]);
  }
  process.stderr.write(
    `lock stress: ${total} acquisitions by ${PROCS} processes in ${ms} ms, ${doubles} double holders\n`,
  );
  assert.equal(total, PROCS * EACH);
  assert.equal(doubles, 0);
  fs.rmSync(dir, { recursive: true, force: true });
});
