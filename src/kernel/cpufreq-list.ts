/** The cpufreq governors this machine offers (for completions and messages): the union over every policy. */
import type { Fs } from './fs.ts';
import { P } from './paths.ts';

/** Governors listed in any `policyN/scaling_available_governors`, in first-seen order; [] without cpufreq. */
export function availableGovernors(fs: Fs): string[] {
  let policies: string[];
  try {
    policies = fs
      .list(P.cpufreqDir)
      .map((e) => e.name)
      .filter((n) => /^policy\d+$/.test(n))
      .sort((a, b) => Number(a.slice(6)) - Number(b.slice(6)));
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const policy of policies) {
    let text: string;
    try {
      text = fs.read(`${P.cpufreqDir}/${policy}/scaling_available_governors`);
    } catch {
      continue;
    }
    for (const g of text.split(/\s+/)) if (g && !out.includes(g)) out.push(g);
  }
  return out;
}
