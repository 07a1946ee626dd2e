/**
 * The guest's stage 1 (test/vm/initramfs-init.sh) mounts the repository and the cache at their host paths. A mount
 * made later on an ancestor of those paths (the guest's own /tmp or /run tmpfs) would hide them: a checkout under
 * /tmp would vanish from the guest. Read the script's mounts in order and check that nothing covers them afterwards,
 * for checkouts and caches under /tmp, /run, /dev/shm and elsewhere.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SCRIPT = readFileSync(fileURLToPath(new URL('../vm/initramfs-init.sh', import.meta.url)), 'utf8');

/** The mount targets of the script in order (`mount ... TARGET`), variables replaced; loops over `$d` expanded. */
function mountTargets(vars: Record<string, string>): { target: string; line: string }[] {
  const out: { target: string; line: string }[] = [];
  const lines = SCRIPT.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const loop = /^for (\w+) in ([\w ]+); do$/.exec(line);
    if (loop) {
      const end = lines.findIndex((l, j) => j > i && l.trim() === 'done');
      for (const value of loop[2]!.split(' ')) {
        for (const inner of lines.slice(i + 1, end)) {
          const t = target(inner.trim(), { ...vars, [loop[1]!]: value });
          if (t) out.push({ target: t, line: inner.trim() });
        }
      }
      i = end;
      continue;
    }
    const t = target(line, vars);
    if (t) out.push({ target: t, line });
  }
  return out;
}

function target(line: string, vars: Record<string, string>): string | undefined {
  if (!/^mount /.test(line)) return undefined;
  const cmd = line.split('||')[0]!.trim();
  const words = cmd.match(/"[^"]*"|\S+/g)!;
  const last = words[words.length - 1]!.replace(/"/g, '');
  return last.replace(/\$(\w+)|\$\{(\w+)\}/g, (_, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    assert.ok(name in vars, `unknown variable $${name} in: ${line}`);
    return vars[name]!;
  });
}

const under = (p: string, dir: string): boolean => p === dir || p.startsWith(dir + '/');

describe('guest stage 1 keeps the repository and the cache visible wherever the checkout lies', () => {
  test('the script mounts the repository and the cache (so the check below looks at them)', () => {
    const t = mountTargets({ R: '/newroot', REPO: '/r', CACHE: '/c', CG: '/newroot/sys/fs/cgroup' });
    assert.ok(t.some((m) => m.target === '/newroot/r' && /virtiofs repo/.test(m.line)));
    assert.ok(t.some((m) => m.target === '/newroot/c' && /virtiofs cache/.test(m.line)));
    assert.ok(
      t.some((m) => m.target === '/newroot/tmp' && /tmpfs/.test(m.line)),
      'the guest has its own /tmp',
    );
  });

  for (const repo of ['/tmp/vi-clone', '/work/main', '/run/user/0/x', '/dev/shm/x', '/home/u/src/x']) {
    for (const cache of [`${repo}/.vm-cache`, '/work/vm-cache', '/tmp/vm-cache']) {
      test(`repository ${repo}, cache ${cache}: no later mount covers them`, () => {
        const R = '/newroot';
        const t = mountTargets({ R, REPO: repo, CACHE: cache, CG: `${R}/sys/fs/cgroup` });
        for (const [tag, path] of [
          ['repo', repo],
          ['cache', cache],
        ] as const) {
          const at = t.findIndex((m) => new RegExp(`virtiofs ${tag}\\b`).test(m.line));
          assert.equal(t[at]!.target, R + path);
          const covering = t.slice(at + 1).filter((m) => under(R + path, m.target) && m.target !== R + path);
          assert.deepEqual(
            covering.map((m) => m.line),
            [],
            `${tag} at ${path} is hidden by a later mount`,
          );
        }
      });
    }
  }
});
