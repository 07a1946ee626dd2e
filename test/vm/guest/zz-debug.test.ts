import { test } from 'node:test';
import { cli } from './cli.ts';
import { notInGuest } from './guest-env.ts';
test('debug', { skip: notInGuest() }, async () => {
  const r = await cli(['-d', '-u', '/tmp/dbg-a.journal', 'isolate', 'C2-3']);
  console.log('DEBUG code', r.code, r.stderr.split('\n').filter((l) => !l.includes('debug: /proc/irq')).join('\n'));
  const s = await cli(['-d', 'release', '/tmp/dbg-a.journal']);
  console.log('DEBUG release', s.code, s.stderr.slice(-2000));
});
