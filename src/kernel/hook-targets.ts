/**
 * What a libvirt hook makes root execute, resolved to canonical paths, and whether root alone could have written
 * all of it (`distrust` of trust.ts, with no sticky directory allowed: these are executables).
 *
 * The hook runs `NODE [NODE-ARGS] TOOL ...`. That executes, besides node itself:
 *  - the tool's entry and the split chunks beside it: every file under the entry's directory (dist/);
 *  - the package.json nearest above the entry (node reads its "type" and "imports");
 *  - koffi, resolved from the entry as the tool resolves it (the node_modules chain above the entry), and its native
 *    addon: the `@koromix/koffi-PLATFORM-ARCH` package beside koffi when present (koffi loads that first), and
 *    koffi's own tree (its build/ fallback) in any case;
 *  - when running from the sources: the loader given with `--import` (tsx) and the whole node_modules it lives in.
 * Files are checked with every directory on the way; trees with everything under them.
 */
import type { Dirent } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RuntimeFailure } from '../errors.ts';
import { koffiPackages } from './paths.ts';
import { distrust, distrustText, type Distrust } from './trust.ts';

const fs = process.getBuiltinModule('node:fs');

export interface HookTarget {
  /** What it is, for messages: "node", "the tool", "koffi", ... */
  what: string;
  /** Canonical path (no symlink left in it). */
  path: string;
}

export interface HookTargets {
  /** The node binary, canonical. */
  node: string;
  /** Extra node arguments, with a loader URL made canonical. */
  nodeArgs: string[];
  /** The tool's entry, canonical. */
  tool: string;
  /** Files checked one by one, with the directories on the way (node and the tool first). */
  files: HookTarget[];
  /** Directories checked with every file and directory under them. */
  trees: HookTarget[];
}

/** The first target root alone could not have written: which target, which path on its way, and why. */
export interface UnsafeTarget extends Distrust {
  target: HookTarget;
}

function real(p: string, what: string): string {
  try {
    return fs.realpathSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new RuntimeFailure(`cannot resolve ${what} ${p}: ${code}`);
  }
}

function nearestPackageJson(dir: string): string | undefined {
  for (let d = dir; ; d = path.dirname(d)) {
    const f = path.join(d, 'package.json');
    if (fs.existsSync(f)) return f;
    if (d === '/') return undefined;
  }
}

/** Is `p` equal to or under directory `dir`? */
function within(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/**
 * Resolve what the hook will execute for `node [nodeArgs] tool`. Throws RuntimeFailure (exit 1) when something
 * cannot be resolved (the tool is gone, koffi cannot be found from the tool).
 */
export function resolveHookTargets(
  node: string,
  tool: string,
  nodeArgs: readonly string[] = [],
): HookTargets {
  const realNode = real(node, 'node');
  const realTool = real(tool, 'the tool');
  const files: HookTarget[] = [
    { what: 'node', path: realNode },
    { what: 'the tool', path: realTool },
  ];
  const trees: HookTarget[] = [{ what: 'a file of the tool', path: path.dirname(realTool) }];
  const pkg = nearestPackageJson(path.dirname(realTool));
  if (pkg) files.push({ what: "the tool's package.json", path: real(pkg, "the tool's package.json") });

  const args = [...nodeArgs];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if ((a === '--import' || a === '--require' || a === '--loader') && args[i + 1] !== undefined) {
      const spec = args[i + 1]!;
      const file = real(spec.startsWith('file:') ? fileURLToPath(spec) : spec, `the loader ${spec}`);
      args[i + 1] = spec.startsWith('file:') ? pathToFileURL(file).href : file;
      const nm = file.lastIndexOf('/node_modules/');
      trees.push({
        what: `the loader ${path.basename(file)}`,
        path: nm < 0 ? path.dirname(file) : file.slice(0, nm + '/node_modules'.length),
      });
      i++;
    }
  }

  let koffiMain: string;
  try {
    koffiMain = real(createRequire(realTool).resolve('koffi'), 'koffi');
  } catch (e) {
    if (e instanceof RuntimeFailure) throw e;
    throw new RuntimeFailure(
      `cannot find koffi (which the tool loads to set thread affinities) from ${realTool}`,
      'install vfio-isolate with its dependencies (npm pack, then npm install -g from the tarball)',
    );
  }
  const { koffi, native } = koffiPackages(koffiMain);
  if (fs.existsSync(native)) trees.push({ what: "koffi's native addon", path: real(native, 'koffi') });
  trees.push({ what: 'koffi', path: koffi });

  // A tree inside another one is checked with it.
  const kept = trees.filter(
    (t, i) => !trees.some((o, j) => j !== i && within(t.path, o.path) && (t.path !== o.path || j < i)),
  );
  return { node: realNode, nodeArgs: args, tool: realTool, files, trees: kept };
}

/** Every directory and file under `dir` (symlinks followed, each real directory once), in a stable order. */
function* walkTree(dir: string, seen: Set<string>): Generator<{ path: string; dir: boolean }> {
  let realDir: string;
  try {
    realDir = fs.realpathSync(dir);
  } catch {
    return; // distrust reports it
  }
  if (seen.has(realDir)) return;
  seen.add(realDir);
  let entries: Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = path.join(dir, e.name);
    let isDir = e.isDirectory();
    if (e.isSymbolicLink()) {
      try {
        isDir = fs.statSync(p).isDirectory();
      } catch {
        isDir = false;
      }
    }
    yield { path: p, dir: isDir };
    if (isDir) yield* walkTree(p, seen);
  }
}

/**
 * The first target that root alone could not have written (owner not root, writable by group or others, on the
 * way or itself; symlinks followed; no sticky directory accepted), or undefined when all of them are safe.
 */
export function unsafeHookTarget(t: Pick<HookTargets, 'files' | 'trees'>): UnsafeTarget | undefined {
  for (const f of t.files) {
    const bad = distrust(f.path, { uid: 0, allowSticky: false, kind: 'file' });
    if (bad) return { ...bad, target: f };
  }
  for (const tree of t.trees) {
    const top = distrust(tree.path, { uid: 0, allowSticky: false, kind: 'dir' });
    if (top) return { ...top, target: tree };
    for (const e of walkTree(tree.path, new Set())) {
      const bad = distrust(e.path, { uid: 0, allowSticky: false, kind: e.dir ? 'dir' : 'file' });
      if (bad) return { ...bad, target: { what: tree.what, path: e.path } };
    }
  }
  return undefined;
}

/** One sentence: "the hook runs node /x/node as root, but /x is owned by uid 1000, not by root". */
export function describeUnsafe(u: UnsafeTarget, verb = 'runs', via = ''): string {
  const gone =
    u.path === u.target.path && u.kind === 'unresolved' && u.code === 'ENOENT'
      ? `${u.path} is gone`
      : distrustText(u);
  return `the hook ${verb} ${u.target.what} ${u.target.path}${via} as root, but ${gone}`;
}

/** The targets recorded in an installed hook, named for messages (node and the tool first). */
export function recordedTargets(r: {
  node: string;
  tool: string;
  files: readonly string[];
  trees: readonly string[];
}): Pick<HookTargets, 'files' | 'trees'> {
  return {
    files: [
      { what: 'node', path: r.node },
      { what: 'the tool', path: r.tool },
      ...r.files.map((p) => ({ what: 'a file of the tool', path: p })),
    ],
    trees: r.trees.map((p) => ({ what: 'a file the tool loads', path: p })),
  };
}
