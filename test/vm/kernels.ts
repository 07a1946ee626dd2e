/**
 * Guest kernels: Debian cloud kernels, resolved through Debian's meta-packages (never pinned), fetched with
 * `apt-get download` and unpacked with `dpkg-deb -x` into the cache. Nothing is installed on the host.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { cacheSubdir } from './cache.ts';
import { WANTED_SERIES, type VmMode } from './modes.ts';

export interface Kernel {
  /** Debian package, e.g. `linux-image-6.1.0-56-cloud-amd64`. */
  package: string;
  /** Debian version of that package, e.g. `6.1.192-2`. */
  version: string;
  /** `uname -r` in the guest, e.g. `6.1.0-56-cloud-amd64`. */
  release: string;
  /** Major.minor, e.g. `6.1`. */
  series: string;
  /** The meta-package the kernel was resolved through (or `cache` when apt could not be asked). */
  meta: string;
  /** Unpacked package root. */
  dir: string;
  vmlinuz: string;
  /** `<dir>/lib/modules/<release>` */
  modulesDir: string;
  /** Whether the kernel can mount a cgroup v1 cpuset hierarchy. */
  hasCpusetsV1: boolean;
}

export interface KernelChoice {
  mode: VmMode;
  wanted: string;
  kernel: Kernel;
  /** Set when the wanted series is not what apt offers, or when apt could not be asked. */
  note?: string;
}

interface Offer {
  meta: string;
  package: string;
  release: string;
  series: string;
  /** Candidate Debian version of `package`. */
  version: string;
}

type Log = (line: string) => void;

function run(cmd: string, args: string[], cwd?: string): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return {
    ok: r.status === 0,
    stdout: r.stdout ?? '',
    stderr: (r.stderr ?? '') + (r.error ? String(r.error) : ''),
  };
}

function seriesOf(release: string): string | undefined {
  return /^(\d+\.\d+)/.exec(release)?.[1];
}

function seriesNumber(series: string): number {
  const [maj, min] = series.split('.').map(Number);
  return (maj ?? 0) * 1000 + (min ?? 0);
}

const META_RE = /^linux-image-([0-9.]+-)?cloud-amd64$/;

/** Split apt-cache output into per-package stanzas (a stanza starts with an unindented `name:` line). */
function stanzas(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let name: string | undefined;
  for (const line of text.split('\n')) {
    const head = /^(\S+):?$/.exec(line);
    if (head?.[1]) {
      name = head[1].replace(/:$/, '');
      out.set(name, '');
    } else if (name !== undefined) {
      out.set(name, out.get(name) + line + '\n');
    }
  }
  return out;
}

/** Kernel packages apt offers through the cloud-amd64 meta-packages (three apt-cache calls, ~1 s each). */
function queryApt(): Offer[] {
  const names = run('apt-cache', ['pkgnames', 'linux-image-']);
  if (!names.ok) return [];
  const metas = names.stdout.split('\n').filter((n) => META_RE.test(n));
  if (metas.length === 0) return [];
  const deps = stanzas(run('apt-cache', ['depends', ...metas]).stdout);
  const targets: Omit<Offer, 'version'>[] = [];
  for (const meta of metas) {
    const m = /Depends: (linux-image-(\S+)-cloud-amd64)(?:-unsigned)?\s*$/m.exec(deps.get(meta) ?? '');
    if (!m?.[1] || !m[2]) continue;
    const release = `${m[2]}-cloud-amd64`;
    const series = seriesOf(release);
    if (series && !targets.some((t) => t.package === m[1]))
      targets.push({ meta, package: m[1], release, series });
  }
  if (targets.length === 0) return [];
  const policy = stanzas(run('apt-cache', ['policy', ...targets.map((t) => t.package)]).stdout);
  const offers: Offer[] = [];
  for (const t of targets) {
    const v = /Candidate:\s*(\S+)/.exec(policy.get(t.package) ?? '')?.[1];
    if (v && v !== '(none)') offers.push({ ...t, version: v });
  }
  return offers;
}

/** Changes whenever `apt-get update` rewrites the package lists. */
function listsStamp(): string {
  const dir = '/var/lib/apt/lists';
  try {
    const files = readdirSync(dir).filter((f) => f.endsWith('_Packages') || f.endsWith('Release'));
    const mtimes = files.map((f) => statSync(join(dir, f)).mtimeMs);
    return `${files.length}:${Math.max(0, ...mtimes)}`;
  } catch {
    return 'none';
  }
}

/** `queryApt()`, memoised in the cache until the package lists change. */
function aptOffers(): Offer[] {
  const memo = join(cacheSubdir('kernels'), 'apt-offers.json');
  const stamp = listsStamp();
  try {
    const saved = JSON.parse(readFileSync(memo, 'utf8')) as { stamp: string; offers: Offer[] };
    if (saved.stamp === stamp && saved.offers.length > 0) return saved.offers;
  } catch {
    // no memo yet
  }
  const offers = queryApt();
  if (offers.length > 0) writeFileSync(memo, JSON.stringify({ stamp, offers }, null, 2) + '\n');
  return offers;
}

function kernelsDir(): string {
  return cacheSubdir('kernels');
}

function loadCached(dir: string): Kernel | undefined {
  const f = join(dir, 'kernel.json');
  if (!existsSync(f)) return undefined;
  try {
    const k = JSON.parse(readFileSync(f, 'utf8')) as Kernel;
    return existsSync(k.vmlinuz) ? k : undefined;
  } catch {
    return undefined;
  }
}

function cachedKernels(): Kernel[] {
  const base = kernelsDir();
  return readdirSync(base)
    .map((d) => loadCached(join(base, d)))
    .filter((k): k is Kernel => k !== undefined)
    .sort((a, b) => a.version.localeCompare(b.version, 'en', { numeric: true }));
}

function aptUpdate(log: Log): boolean {
  if (process.getuid?.() !== 0) return false;
  log('vm: apt-get update (package lists are missing or stale)');
  return run('apt-get', ['update', '-qq']).ok;
}

function download(pkg: string, version: string, log: Log): string {
  const debs = cacheSubdir('debs');
  const file = join(debs, `${pkg}_${version.replace(/:/g, '%3a')}_amd64.deb`);
  if (existsSync(file)) return file;
  log(`vm: apt-get download ${pkg} (${version})`);
  const r = run('apt-get', ['download', '-q', `${pkg}=${version}`], debs);
  if (!r.ok) throw new Error(`apt-get download ${pkg}=${version} failed:\n${r.stderr.trim()}`);
  if (!existsSync(file)) throw new Error(`apt-get download ${pkg} did not produce ${file}`);
  return file;
}

function unpack(offer: Offer, version: string, log: Log): Kernel {
  const base = kernelsDir();
  const target = join(base, `${offer.package}_${version.replace(/[:/]/g, '_')}`);
  const cached = loadCached(target);
  if (cached) return cached;
  const deb = download(offer.package, version, log);
  const tmp = mkdtempSync(join(base, '.unpack-'));
  log(`vm: dpkg-deb -x ${deb}`);
  const r = run('dpkg-deb', ['-x', deb, tmp]);
  if (!r.ok) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`dpkg-deb -x ${deb} failed:\n${r.stderr.trim()}`);
  }
  const config = readFileSync(join(tmp, 'boot', `config-${offer.release}`), 'utf8');
  // 6.12+ has the switch; older kernels always have v1 cpusets when CONFIG_CPUSETS is set.
  const hasCpusetsV1 = /^CONFIG_CPUSETS_V1=y/m.test(config) || !/CONFIG_CPUSETS_V1/.test(config);
  const kernel: Kernel = {
    package: offer.package,
    version,
    release: offer.release,
    series: offer.series,
    meta: offer.meta,
    dir: target,
    vmlinuz: join(target, 'boot', `vmlinuz-${offer.release}`),
    modulesDir: join(target, 'lib', 'modules', offer.release),
    hasCpusetsV1,
  };
  writeFileSync(join(tmp, 'kernel.json'), JSON.stringify(kernel, null, 2) + '\n');
  try {
    renameSync(tmp, target);
  } catch {
    // Another run unpacked the same kernel meanwhile.
    rmSync(tmp, { recursive: true, force: true });
  }
  rmSync(deb, { force: true });
  const done = loadCached(target);
  if (!done) throw new Error(`unpacked kernel in ${target} has no vmlinuz`);
  return done;
}

function closest<T extends { series: string }>(items: T[], wanted: string): T | undefined {
  const w = seriesNumber(wanted);
  return [...items].sort((a, b) => {
    const d = Math.abs(seriesNumber(a.series) - w) - Math.abs(seriesNumber(b.series) - w);
    return d !== 0 ? d : seriesNumber(b.series) - seriesNumber(a.series);
  })[0];
}

/**
 * Make sure a kernel for each mode is unpacked in the cache; returns the choice per mode. Idempotent: with the
 * kernels cached it only asks apt-cache which versions the meta-packages currently point at.
 */
export async function ensureKernels(
  modes: readonly VmMode[],
  log: Log = (l) => process.stderr.write(l + '\n'),
): Promise<Map<VmMode, KernelChoice>> {
  let offers = aptOffers();
  let updated = false;
  if (offers.length === 0 && cachedKernels().length === 0 && aptUpdate(log)) {
    updated = true;
    offers = aptOffers();
  }
  const out = new Map<VmMode, KernelChoice>();
  for (const mode of modes) {
    const wanted = WANTED_SERIES[mode];
    let note: string | undefined;
    let kernel: Kernel | undefined;
    const pick = (): [Offer, string] | undefined => {
      const offer = offers.find((o) => o.series === wanted) ?? closest(offers, wanted);
      return offer ? [offer, offer.version] : undefined;
    };
    let picked = pick();
    if (picked) {
      try {
        kernel = unpack(picked[0], picked[1], log);
      } catch (e) {
        // Stale package lists: the old build is gone from the mirror. Update once and resolve again.
        if (updated || !aptUpdate(log)) throw e;
        updated = true;
        offers = aptOffers();
        picked = pick();
        if (!picked) throw e;
        kernel = unpack(picked[0], picked[1], log);
      }
      if (picked[0].series !== wanted) {
        note = `mode ${mode} wants Linux ${wanted} but apt offers no such cloud kernel; using the closest, ${picked[0].release}`;
      }
    } else {
      const cached = cachedKernels();
      kernel = cached.filter((k) => k.series === wanted).pop() ?? closest(cached, wanted);
      if (!kernel) {
        throw new Error(
          `no cloud kernel for mode ${mode}: apt offers none (run apt-get update?) and the cache ${kernelsDir()} is empty`,
        );
      }
      note = `apt offered no cloud kernel meta-package; using cached ${kernel.release}`;
      if (kernel.series !== wanted) note += ` (mode ${mode} wants ${wanted})`;
    }
    if (mode === 'v1-hybrid' && !kernel.hasCpusetsV1) {
      note = `${note ? note + '; ' : ''}${kernel.release} is built without CONFIG_CPUSETS_V1: no v1 cpuset hierarchy`;
    }
    out.set(mode, { mode, wanted, kernel, ...(note ? { note } : {}) });
  }
  return out;
}
