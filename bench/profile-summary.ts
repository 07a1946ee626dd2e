/**
 * Where a CPU profile's time goes, by function: the profiles `BENCH_PROFILE=1` writes to .vm-cache/bench/ (V8's
 * .cpuprofile, as Chrome DevTools opens them), summed up without DevTools.
 *
 *   node --import tsx bench/profile-summary.ts FILE [--top 30]              self and inclusive time per function
 *   node --import tsx bench/profile-summary.ts FILE --under NAME [--min 4]  the call tree below every NAME, merged
 *
 * A function is named `name:line` (the line in the bundle the guest ran). Times are the sampled time in ms; under
 * TCG the sampling interval is coarse, so read them as shares of the total. The tally itself is
 * bench/profile-core.ts.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { byFunction, treeUnder, type CpuProfile } from './profile-core.ts';

const { values, positionals } = parseArgs({
  options: {
    top: { type: 'string', default: '30' },
    under: { type: 'string' },
    min: { type: 'string', default: '1' },
  },
  allowPositionals: true,
});
const file = positionals[0];
if (!file) {
  process.stderr.write(
    'usage: node --import tsx bench/profile-summary.ts FILE [--top N] [--under NAME [--min MS]]\n',
  );
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const ms = (us: number): string => (us / 1000).toFixed(1).padStart(9);
if (values.under) {
  const lines = treeUnder(profile, values.under, Number(values.min) * 1000);
  if (lines.length === 0) process.stdout.write(`no call of ${values.under} in ${file}\n`);
  for (const l of lines)
    process.stdout.write(`${'  '.repeat(l.depth)}${ms(l.total)} (self ${ms(l.self).trim()}) ${l.name}\n`);
} else {
  const { total, self, inclusive } = byFunction(profile);
  const top = Number(values.top);
  process.stdout.write(`total ${ms(total).trim()} ms sampled\n-- self\n`);
  for (const [name, t] of self.slice(0, top)) process.stdout.write(`${ms(t)} ms  ${name}\n`);
  process.stdout.write('-- inclusive\n');
  for (const [name, t] of inclusive.slice(0, top)) process.stdout.write(`${ms(t)} ms  ${name}\n`);
}
