/**
 * Lock stress worker: take the lock at argv[2] argv[3] times; while holding it, create an exclusive marker file
 * (O_EXCL: fails if another holder's marker is there), then remove it. Prints "ok N double D ms T" (T: the loop's own time, without start-up) at the end.
 */
import * as fs from 'node:fs';
import { lockFile } from '../../src/kernel/lock.ts';

const [file, times] = [process.argv[2]!, Number(process.argv[3])];
const marker = `${file}.holder`;
let doubles = 0;
const t0 = Date.now();
for (let i = 0; i < times; i++) {
  const l = lockFile(file, 120000);
  try {
    fs.closeSync(
      fs.openSync(marker, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600),
    );
  } catch {
    doubles++;
  }
  // A few holders check twice, with a pause, to widen the window an impostor would need.
  if (i % 97 === 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
  try {
    fs.unlinkSync(marker);
  } catch {
    doubles++;
  }
  l.release();
}
process.stdout.write(`ok ${times} double ${doubles} ms ${Date.now() - t0}\n`);
