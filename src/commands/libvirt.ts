/**
 * libvirt integration: `libvirt cputune` prints the domain XML for the pinning, `libvirt hook install|uninstall|list`
 * manage a per-domain hook script that isolates at `prepare begin` and releases at `release end`.
 * Also registers the TOML profile loader that `isolate --profile` uses.
 */
import * as path from 'node:path';
import type { Ctx, Handler, Invocation } from '../cli/spec.ts';
import { RuntimeFailure, UsageError } from '../errors.ts';
import {
  anyQemuHook,
  hookFilePath,
  hookJournalPath,
  installHookFile,
  listHookDir,
  QEMU_HOOK_DIR,
  QEMU_HOOK_SCRIPT,
  readHookFile,
  removeEmptyDirs,
  removeHookFile,
} from '../kernel/hooks.ts';
import {
  describeUnsafe,
  resolveHookTargets,
  unsafeHookTarget,
  type HookTargets,
} from '../kernel/hook-targets.ts';
import { P } from '../kernel/paths.ts';
import { cputuneJson, planCputune, renderCputuneXml } from '../libvirt/cputune.ts';
import {
  domainNameProblem,
  hookFileName,
  isOurHook,
  parseHookScript,
  pathProblem,
  renderHookScript,
  type HookInfo,
} from '../libvirt/hook-script.ts';
import { loadNamedProfile, loadProfile, profileFile, type Profile } from '../profile.ts';
import { emulatorCpusOf, schedOf, vmCpusOf } from './pin-qemu.ts';
import { jsonDocument } from '../report/json-text.ts';

const fs = process.getBuiltinModule('node:fs');

function optProfile(ctx: Ctx, inv: Invocation): Profile | undefined {
  const f = inv.values.profile;
  if (typeof f !== 'string') return undefined;
  return loadNamedProfile(f, ctx.k, (w) => ctx.log.warn(w));
}

// ---------------------------------------------------------------------------------------------------------------
// libvirt cputune

function cputuneRun(ctx: Ctx, inv: Invocation): number {
  const v = inv.values;
  const cmd = inv.name;
  const profile = optProfile(ctx, inv);
  const vm = vmCpusOf(ctx, cmd, typeof v.vm === 'string' ? v.vm : undefined, profile);
  const emulator = emulatorCpusOf(
    ctx,
    cmd,
    vm,
    typeof v.emulator === 'string' ? v.emulator : undefined,
    profile,
  );
  let iothreads = profile?.cputune.iothreads ?? 1;
  if (typeof v.iothreads === 'string') {
    if (!/^\d{1,2}$/.test(v.iothreads) || Number(v.iothreads) > 64) {
      throw new UsageError(`${cmd}: --iothreads must be a number from 0 to 64, not "${v.iothreads}"`);
    }
    iothreads = Number(v.iothreads);
  }
  const vcpuSched = schedOf(cmd, v.sched, v.priority) ?? profile?.cputune.vcpuSched;
  const iothreadSched =
    schedOf(cmd, v.iothreadSched, v.iothreadPriority, '--iothread-sched') ?? profile?.cputune.iothreadSched;
  if (iothreadSched && iothreads === 0)
    throw new UsageError(`${cmd}: --iothread-sched needs at least one I/O thread (--iothreads N)`);
  const plan = planCputune(ctx.k.machine, {
    vm,
    emulator,
    iothreads,
    ...(vcpuSched ? { vcpuSched } : {}),
    ...(iothreadSched ? { iothreadSched } : {}),
  });
  for (const w of plan.warnings) ctx.log.warn(w);
  if (ctx.g.json || v.json === true) {
    ctx.streams.out(jsonDocument(cputuneJson(plan)));
    return 0;
  }
  if (ctx.streams.isTTY) {
    ctx.streams.err(
      'vfio-isolate: paste into "virsh edit DOMAIN", replacing its <vcpu>, <iothreads>, <cputune>, <cpu> and <numatune> elements\n',
    );
  }
  ctx.streams.out(renderCputuneXml(plan));
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// libvirt hook install | uninstall | list

function requireRoot(ctx: Ctx): void {
  if (!ctx.g.dryRun && ctx.k.euid !== 0) {
    throw new RuntimeFailure('must run as root (try sudo)', 'use --dry-run to see what would be written');
  }
}

function domainArg(cmd: string, name: string | undefined): string {
  const d = name ?? '';
  const problem = domainNameProblem(d);
  if (problem) throw new UsageError(`${cmd}: ${problem}`, 'nothing was written');
  return d;
}

/**
 * How the hook calls this tool: the node running now and our script, by absolute paths (hooks get a minimal
 * PATH), resolved with everything they execute (see kernel/hook-targets.ts).
 */
export function selfInvocation(): HookTargets {
  const script = process.argv[1];
  if (!script) throw new RuntimeFailure('cannot tell where vfio-isolate is installed (no script path)');
  const tool = path.resolve(script);
  const nodeArgs: string[] = [];
  if (/\.[cm]?ts$/.test(tool)) {
    // Running from the sources: the hook needs the TypeScript loader too, by absolute URL.
    nodeArgs.push('--import', import.meta.resolve('tsx'));
  }
  return resolveHookTargets(process.execPath, tool, nodeArgs);
}

/** Refuse (exit 1) a hook that would make root run something a user could have changed. */
function refuseUnsafeTargets(cmd: string, self: HookTargets): void {
  const bad = unsafeHookTarget(self);
  if (!bad) return;
  // node and the entry as they were invoked, when that differs from what the hook will run.
  const given =
    bad.target === self.files[0]
      ? process.execPath
      : bad.target === self.files[1]
        ? path.resolve(process.argv[1] ?? '')
        : bad.target.path;
  const via = given !== bad.target.path ? ` (via ${given})` : '';
  throw new RuntimeFailure(
    `${cmd}: ${describeUnsafe(bad, 'would run', via)}`,
    bad.target.what === 'node'
      ? `use a root-owned node, such as Debian's /usr/bin/node (apt install nodejs), and install the hook with it: sudo /usr/bin/node ${self.tool} ${cmd} ...`
      : 'install vfio-isolate from its tarball, so that root owns a copy: npm pack && sudo npm install -g --ignore-scripts ./vfio-isolate-*.tgz (or npm run install-global), then run the install with that copy',
  );
}

function hookInstallRun(ctx: Ctx, inv: Invocation): number {
  const cmd = inv.name;
  const domain = domainArg(cmd, inv.args.DOMAIN);
  if (hookJournalPath(domain) === P.hostJournal)
    throw new UsageError(
      `${cmd}: the hook of domain "${domain}" would journal in ${P.hostJournal}, the host journal (the host's state before the first isolate)`,
      'nothing was written; rename the domain (virsh domrename) to use a hook',
    );
  const file = inv.values.profile;
  if (typeof file !== 'string') {
    throw new UsageError(
      `${cmd}: --profile FILE is required`,
      `e.g. vfio-isolate libvirt hook install ${domain} --profile ${domain} (= /etc/vfio-isolate/${domain}.toml)`,
    );
  }
  const profilePath = path.resolve(profileFile(file, (sys) => ctx.k.hostPath(sys)));
  const pp = pathProblem(profilePath);
  if (pp) throw new UsageError(`${cmd}: profile path ${pp}`, 'nothing was written');
  const profile = loadProfile(profilePath, ctx.k.machine);
  for (const w of profile.warnings) ctx.log.warn(w);
  if (profile.domain !== undefined && profile.domain !== domain) {
    throw new UsageError(
      `${cmd}: ${path.basename(profilePath)} is the profile of domain "${profile.domain}", not "${domain}"`,
      'nothing was written',
    );
  }
  requireRoot(ctx);
  const self = selfInvocation();
  for (const p of [
    self.node,
    self.tool,
    ...self.files.map((f) => f.path),
    ...self.trees.map((t) => t.path),
  ]) {
    const bad = pathProblem(p);
    if (bad) throw new RuntimeFailure(`${cmd}: cannot call this tool from a hook: ${bad}`);
  }
  refuseUnsafeTargets(cmd, self);
  if (/\/_npx\/|\/\.npm\//.test(self.tool)) {
    ctx.log.warn(
      `${cmd}: vfio-isolate runs from a temporary npx directory (${self.tool}); install it for good (npm install -g) so the hook keeps working`,
    );
  }
  // The system path under the kernel's root (a test's fake tree has its own /run), like isolate's own journal.
  const journal = ctx.k.hostPath(hookJournalPath(domain));
  const target = hookFilePath(hookFileName(domain));
  // On an update, keep the record of the directories the first install created (uninstall removes them).
  const prev = readHookFile(ctx.k, target);
  const prevCreated = prev?.text !== undefined ? (parseHookScript(prev.text)?.created ?? []) : [];
  const text = (created: string[]): string =>
    renderHookScript({
      domain,
      profile: profilePath,
      journal,
      created: [...new Set([...prevCreated, ...created])],
      node: self.node,
      nodeArgs: self.nodeArgs,
      tool: self.tool,
      // node and the tool are checked by name in the script; the rest by path.
      files: self.files.slice(2).map((f) => f.path),
      trees: self.trees.map((t) => t.path),
    });
  const firstHook = !anyQemuHook(ctx.k);
  if (ctx.g.dryRun) {
    const existing = readHookFile(ctx.k, target);
    if (existing && !(existing.text !== undefined && isOurHook(existing.text))) {
      throw new RuntimeFailure(`${target} exists and was not written by vfio-isolate; leaving it alone`);
    }
    ctx.streams.out(`Would ${existing ? 'replace' : 'write'} ${target} (mode 0755):\n\n${text([])}`);
    return 0;
  }
  const res = installHookFile(ctx.k, hookFileName(domain), text, isOurHook);
  if (ctx.g.json) {
    ctx.streams.out(
      jsonDocument({
        installed: res.path,
        domain,
        profile: profilePath,
        journal,
        replaced: res.replaced,
        created: res.created,
      }),
    );
  } else {
    ctx.streams.out(
      `${res.replaced ? 'Updated' : 'Installed'} the hook for domain ${domain}: ${res.path}\n` +
        `  prepare begin -> vfio-isolate -u ${journal} isolate --profile ${profilePath}\n` +
        `  release end   -> vfio-isolate -u ${journal} release --profile ${profilePath}\n` +
        `  log: journalctl -t vfio-isolate (or your syslog)\n`,
    );
    if (firstHook) {
      ctx.streams.out(
        'libvirtd looks for hook scripts only when it starts: restart it before starting the domain\n' +
          '  (sudo systemctl restart libvirtd, or virtqemud on modular installs; running VMs keep running).\n',
      );
    }
  }
  return 0;
}

function hookUninstallRun(ctx: Ctx, inv: Invocation): number {
  const cmd = inv.name;
  const domain = domainArg(cmd, inv.args.DOMAIN);
  requireRoot(ctx);
  const target = hookFilePath(hookFileName(domain));
  const existing = readHookFile(ctx.k, target);
  const info = existing?.text !== undefined ? parseHookScript(existing.text) : undefined;
  if (!existing) {
    throw new RuntimeFailure(
      `${cmd}: no hook is installed for domain ${domain} (${target} does not exist)`,
      'see vfio-isolate libvirt hook list',
    );
  }
  if (ctx.g.dryRun) {
    if (!info) throw new RuntimeFailure(`${target} was not written by vfio-isolate; leaving it alone`);
    ctx.streams.out(`Would remove ${target}\n`);
    return 0;
  }
  removeHookFile(ctx.k, hookFileName(domain), isOurHook);
  const dirs = removeEmptyDirs(ctx.k, info?.created ?? []);
  if (ctx.g.json) ctx.streams.out(jsonDocument({ removed: target, domain, removedDirs: dirs }));
  else ctx.streams.out(`Removed the hook for domain ${domain}: ${target}\n`);
  return 0;
}

interface ListedHook extends HookInfo {
  path: string;
  profileMissing: boolean;
}

function hookListRun(ctx: Ctx): number {
  const ours: ListedHook[] = [];
  const others: string[] = [];
  for (const h of listHookDir(ctx.k)) {
    const info = h.text !== undefined && h.isFile ? parseHookScript(h.text) : undefined;
    if (info) {
      let missing = false;
      if (info.profile !== undefined) {
        const prof = readProfileStat(info.profile);
        missing = !prof;
      }
      ours.push({ ...info, path: h.path, profileMissing: missing });
    } else if (h.executable || h.isSymlink) others.push(h.path);
  }
  const legacy = readHookFile(ctx.k, QEMU_HOOK_SCRIPT);
  if (legacy) others.unshift(legacy.path);
  if (ctx.g.json) {
    ctx.streams.out(jsonDocument({ dir: QEMU_HOOK_DIR, hooks: ours, others }));
    return 0;
  }
  if (ours.length === 0) ctx.streams.out(`No vfio-isolate hooks in ${QEMU_HOOK_DIR}.\n`);
  else {
    const rows = ours.map((h) => [
      h.domain,
      (h.profile ?? '?') + (h.profileMissing ? ' (missing!)' : ''),
      h.path,
    ]);
    const head = ['DOMAIN', 'PROFILE', 'HOOK'];
    const w = head.map((hd, i) => Math.max(hd.length, ...rows.map((r) => r[i]!.length)));
    const fmt = (r: string[]): string =>
      r
        .map((c, i) => (i < r.length - 1 ? c.padEnd(w[i]!) : c))
        .join('  ')
        .trimEnd() + '\n';
    ctx.streams.out(fmt(head));
    for (const r of rows) ctx.streams.out(fmt(r));
  }
  if (others.length)
    ctx.streams.out(`Other QEMU hooks (not managed by vfio-isolate): ${others.join(', ')}\n`);
  return ours.some((h) => h.profileMissing) ? 1 : 0;
}

/** Does the profile (a user file, not a system path) still exist? */
function readProfileStat(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** libvirt and pin-qemu (one entry point for the command table). */

/** The handlers of this file's commands, by full name (the command table loads this module on demand). */
export const handlers: Record<string, Handler> = {
  'libvirt cputune': { kind: 'report', run: cputuneRun },
  'libvirt hook install': { kind: 'report', run: hookInstallRun },
  'libvirt hook uninstall': { kind: 'report', run: hookUninstallRun },
  'libvirt hook list': { kind: 'report', run: (ctx) => hookListRun(ctx) },
};
