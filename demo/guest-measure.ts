/**
 * The measure section of the guest demo (guest-demo.ts calls it): a busy task pinned to one VM CPU is the noise;
 * `isolate --measure N` probes the VM CPUs before any change and again after the isolation, and prints both side
 * by side; then release. Runs inside the throw-away guest only (guest-demo.ts refuses to run anywhere else).
 */
import { spawn } from 'node:child_process';

/** What the section needs of guest-demo.ts: its event emitters and the in-process tool run. */
export interface MeasureDemoIo {
  section(title: string): void;
  say(text: string): void;
  check(name: string, ok: boolean, detail?: string): boolean;
  tool(argv: string[], colour: boolean): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** The figures of one CPU's row in isolate --measure's table: host us/s before and after. */
export function hostUsBeforeAfter(
  stdout: string,
  cpu: number,
): { before: number; after: number } | undefined {
  // eslint-disable-next-line no-control-regex
  const plain = stdout.replace(/\x1b\[[0-9;]*m/g, '');
  const m = new RegExp(`^${cpu}\\s+\\S+ -> \\S+\\s+(\\S+) -> (\\S+)`, 'm').exec(plain);
  if (!m) return undefined;
  return { before: Number(m[1]), after: Number(m[2]) };
}

/** The section: noise on `noisy` (one of `vm`), isolate --measure `seconds` C`vm`, release. */
export async function measureDemo(
  io: MeasureDemoIo,
  opts: { vm: string; noisy: number; seconds: number; colour: boolean },
): Promise<void> {
  io.section('Prove it: measure before and after');
  io.say(
    `A busy task pinned to CPU ${opts.noisy} (taskset -c ${opts.noisy}) is the noise a VM would suffer there. ` +
      `isolate --measure ${opts.seconds} probes the VM CPUs (one pinned clock-reading thread per CPU) for ` +
      `${opts.seconds} s before changing anything and again once the isolation is in place, and prints both. ` +
      'This guest is emulated (TCG: one host thread runs every vCPU in turn), so its figures are only relative: ' +
      'compare before with after, not with a real machine.',
  );
  const noise = spawn('taskset', ['-c', String(opts.noisy), 'sh', '-c', 'while :; do :; done'], {
    stdio: 'ignore',
  });
  try {
    await new Promise((r) => setTimeout(r, 300));
    const r = await io.tool(['isolate', '--measure', String(opts.seconds), `C${opts.vm}`], opts.colour);
    const f = hostUsBeforeAfter(r.stdout, opts.noisy);
    io.check(
      `isolate --measure: host time on CPU ${opts.noisy} drops by at least 10x once isolated`,
      r.code === 0 && f !== undefined && f.after < f.before / 10,
      f
        ? `host us/s on CPU ${opts.noisy}: ${f.before} -> ${f.after}`
        : `exit ${r.code}: no figures for CPU ${opts.noisy}`,
    );
  } finally {
    noise.kill('SIGKILL');
  }
  const rel = await io.tool(['release'], opts.colour);
  io.check('release succeeds', rel.code === 0, rel.code === 0 ? '' : `exit ${rel.code}`);
}
