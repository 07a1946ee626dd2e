/**
 * `npm run demo`: shows isolation working, safely. Boots the throw-away QEMU guest of the real-kernel test harness
 * (test/vm/harness.ts) and runs demo/guest-demo.ts in it as one node process, which calls the CLI in-process on
 * the guest's own kernel; this machine's cgroups, IRQs and tasks are never touched. The guest reports each step as
 * an event; this side narrates them, or with --json prints one machine-readable transcript. Exit 0 only when every
 * step did what it says (a smoke test for CI), 1 otherwise or when the guest cannot be booted, 2 on bad usage.
 *
 *   npm run demo                  cgroup v2 guest (Linux 6.12)
 *   npm run demo -- --cgroup v1   cgroup v1 cpuset + controller-less cgroup2 (systemd's hybrid layout, Linux 6.1)
 *   npm run demo -- --systemd     this machine's systemd as PID 1 and libvirt (systemd.ts, guest-systemd.ts)
 *   npm run demo -- --json        the whole transcript as JSON on stdout
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';
import { REPO_ROOT, cacheSubdir } from '../test/vm/cache.ts';
import { ensureKernels, runInGuest, vmAvailable, type GuestResult } from '../test/vm/harness.ts';
import { decodeEvent, LineSplitter, type DemoEvent } from './events.ts';
import { parseOptions, USAGE } from './options.ts';
import { formatSeconds, TextRenderer } from './render.ts';
import { buildCliForHook, SYSTEMD_GUEST_ENTRY, SYSTEMD_LABEL, systemdDemoMissing } from './systemd.ts';

function useColour(): boolean {
  const env = process.env;
  return Boolean(process.stdout.isTTY) && !('NO_COLOR' in env && env.NO_COLOR !== '') && env.TERM !== 'dumb';
}

/**
 * Bundle the guest half into one file: under emulation, tsx's on-the-fly compilation of ~60 modules takes
 * minutes, a plain .mjs seconds. It lives in the harness cache inside the repository (the guest sees the
 * repository, and node finds koffi from there).
 */
async function bundleGuest(entry: string): Promise<string> {
  const outfile = join(cacheSubdir('demo'), entry.replace(/\.ts$/, '.mjs'));
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  await build({
    entryPoints: [join(REPO_ROOT, 'demo', entry)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    external: ['koffi'],
    define: { __VERSION__: JSON.stringify(pkg.version) },
    legalComments: 'none',
    logLevel: 'error',
  });
  return outfile;
}

interface Transcript {
  events: DemoEvent[];
  raw: { stream: 'stdout' | 'stderr'; line: string }[];
}

async function main(): Promise<number> {
  const t0 = Date.now();
  const opts = parseOptions(process.argv.slice(2));
  if ('help' in opts) {
    process.stdout.write(USAGE);
    return 0;
  }
  if ('error' in opts) {
    process.stderr.write(`demo: ${opts.error}\n\n${USAGE}`);
    return 2;
  }
  const colour = !opts.json && useColour();
  // In --json mode stdout carries only the JSON transcript; the narration goes to stderr.
  const tty = opts.json ? process.stderr : process.stdout;
  const width = Math.min(110, Math.max(60, tty.columns || 100));
  const say = (s: string): void => void tty.write(s);
  const r = new TextRenderer({ colour, width, write: say });
  const fail = (error: string, install?: string): number => {
    if (opts.json) {
      process.stdout.write(
        JSON.stringify({ ok: false, mode: opts.mode, error, install: install ?? null }, null, 2) + '\n',
      );
    } else {
      process.stderr.write(`demo: ${error}\n`);
      if (install)
        process.stderr.write(`To run the demo, install what is missing (as root):\n\n  ${install}\n\n`);
    }
    return 1;
  };

  const avail = vmAvailable();
  if (!avail.ok) {
    const why = avail.why ?? 'QEMU is not usable';
    // The harness needs root for virtiofsd: then the fix is sudo, not a package.
    if (/\broot\b/.test(why) && !why.startsWith('missing')) {
      return fail(`cannot boot the demo guest: ${why}; run it as root: sudo npm run demo`);
    }
    return fail(`cannot boot the demo guest: ${why}`, avail.install);
  }
  const systemd = opts.mode === 'systemd';
  const missing = systemd ? systemdDemoMissing() : undefined;
  if (missing) return fail(`cannot run the systemd demo: ${missing.why}`, missing.install);

  let kernel: string;
  try {
    const choice = (await ensureKernels([opts.mode], (l) => process.stderr.write(`demo: ${l}\n`))).get(
      opts.mode,
    );
    if (!choice) throw new Error(`no kernel for mode ${opts.mode}`);
    kernel = choice.kernel.release;
    if (choice.note) process.stderr.write(`demo: note: ${choice.note}\n`);
  } catch (e) {
    return fail(
      `cannot get the guest kernel (Debian cloud kernels, fetched with apt-get download): ${(e as Error).message}; ` +
        'run apt-get update and try again',
      avail.install,
    );
  }

  const entry = systemd ? SYSTEMD_GUEST_ENTRY : 'guest-demo.ts';
  if (systemd) {
    try {
      buildCliForHook();
    } catch (e) {
      return fail(`cannot build dist/ for the libvirt hook in the guest: ${(e as Error).message}`);
    }
  }
  let command: string;
  try {
    command = `exec node ${relative(REPO_ROOT, await bundleGuest(entry))}`;
  } catch (e) {
    process.stderr.write(
      `demo: could not bundle the guest script (${(e as Error).message}); using tsx (slow)\n`,
    );
    command = `exec node --import tsx demo/${entry}`;
  }

  const cg = systemd ? SYSTEMD_LABEL : opts.mode === 'v2' ? 'cgroup v2' : 'cgroup v1 (hybrid)';
  r.line(
    colour
      ? `\x1b[1mvfio-isolate demo\x1b[0m: ${cg}, guest kernel ${kernel}`
      : `vfio-isolate demo: ${cg}, guest kernel ${kernel}`,
  );
  r.say(
    'Booting a throw-away QEMU guest (emulated CPUs: everything takes a while). Everything below runs on the ' +
      "guest's real kernel, never on this machine.",
  );

  const tx: Transcript = { events: [], raw: [] };
  const onLine =
    (stream: 'stdout' | 'stderr') =>
    (line: string): void => {
      const e = stream === 'stdout' ? decodeEvent(line) : undefined;
      if (e) {
        if (tx.events.length === 0) r.say(`Guest up after ${formatSeconds((Date.now() - t0) / 1000)}.`);
        tx.events.push(e);
        r.event(e);
      } else if (line.trim() !== '') {
        tx.raw.push({ stream, line });
        r.raw(line, stream);
      }
    };
  const splitters = {
    stdout: new LineSplitter(onLine('stdout')),
    stderr: new LineSplitter(onLine('stderr')),
  };
  let result: GuestResult | undefined;
  let crash: string | undefined;
  try {
    result = await runInGuest({
      mode: opts.mode,
      command,
      timeoutSec: opts.timeoutSec,
      keep: opts.keep,
      env: { VFIO_DEMO_COLOUR: colour ? '1' : '0' },
      onOutput: (chunk, stream) => splitters[stream].write(chunk),
    });
  } catch (e) {
    crash = (e as Error).message;
  } finally {
    splitters.stdout.flush();
    splitters.stderr.flush();
  }

  const checks = tx.events.flatMap((e) =>
    e.type === 'check' ? [{ name: e.name, ok: e.ok, detail: e.detail }] : [],
  );
  const figures = tx.events.flatMap((e) =>
    e.type === 'leaks' ? [{ label: e.label, figures: e.figures }] : [],
  );
  const end = tx.events.find((e): e is Extract<DemoEvent, { type: 'end' }> => e.type === 'end');
  const problems: string[] = [];
  if (crash) problems.push(`the guest could not be run: ${crash}`);
  else if (result && result.code !== 0 && checks.every((c) => c.ok)) {
    problems.push(
      result.timedOut
        ? `the guest was killed after ${opts.timeoutSec} s`
        : `the guest demo exited ${result.code}`,
    );
  }
  if (!crash && !end) problems.push('the guest demo did not run to its end');
  const ok = problems.length === 0 && checks.length > 0 && checks.every((c) => c.ok) && end?.ok === true;
  const totalSec = (Date.now() - t0) / 1000;
  const timings = {
    totalSeconds: Number(totalSec.toFixed(1)),
    bootSeconds: result?.bootSeconds !== undefined ? Number(result.bootSeconds.toFixed(1)) : null,
    guestDemoSeconds: end ? Number(end.seconds.toFixed(1)) : null,
  };

  r.summary(figures, checks);
  for (const p of problems) r.line(`demo: ${p}`);
  if (result && (!ok || opts.keep)) {
    if (problems.length > 0) {
      // The guest itself went wrong (not just a check): its console says why.
      r.line('Guest console (last lines):');
      for (const l of result.consoleTail.split('\n').slice(-15)) r.line(`  | ${l.replace(/\r$/, '')}`);
      const err = result.stderr.trimEnd().split('\n').slice(-10);
      if (err.join('') !== '') r.line(`Guest stderr (last lines):\n${err.map((l) => `  | ${l}`).join('\n')}`);
    }
    r.line(`Guest job folder (logs, console): ${result.jobDir}`);
  }
  r.say(
    `Time: ${formatSeconds(totalSec)} in all; guest boot ${timings.bootSeconds !== null ? formatSeconds(timings.bootSeconds) : '?'}, ` +
      `demo in the guest ${timings.guestDemoSeconds !== null ? formatSeconds(timings.guestDemoSeconds) : '?'}.`,
  );

  if (opts.json) {
    const doc = {
      tool: 'vfio-isolate demo',
      ok,
      mode: opts.mode,
      kernel,
      vmCpus:
        tx.events.find((e): e is Extract<DemoEvent, { type: 'start' }> => e.type === 'start')?.vmCpus ?? null,
      timings,
      checks,
      leakFigures: figures,
      problems,
      events: tx.events,
      guestOutput: tx.raw,
      guestExitCode: result?.code ?? null,
      jobDir: result && (!ok || opts.keep) ? result.jobDir : null,
    };
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  }
  return ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`demo: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
