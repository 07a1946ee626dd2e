import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { distrust, distrustText, distrustWay } from '../../src/kernel/trust.ts';

// The tests' directories live under os.tmpdir(), a root-owned sticky directory, so the checks accept sticky
// directories on the way; one test turns that off.
const T = { uid: 0, allowSticky: true } as const;

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vi-trust-'));
  fs.chmodSync(d, 0o755);
  return d;
}

/** A root-owned sticky directory (mode 1777, as /tmp) in a root-only one. */
function stickyDir(): string {
  const sticky = path.join(tmp(), 'tmp');
  fs.mkdirSync(sticky);
  fs.chmodSync(sticky, 0o1777);
  return sticky;
}

test('a root-owned 0600 file in a root-owned 0755 directory is trusted', () => {
  const d = tmp();
  fs.writeFileSync(path.join(d, 'j'), 'x', { mode: 0o600 });
  assert.equal(distrust(path.join(d, 'j'), T), undefined);
});

test('a file owned by another user is named with its owner', () => {
  const d = tmp();
  const f = path.join(d, 'j');
  fs.writeFileSync(f, 'x', { mode: 0o600 });
  fs.chownSync(f, 1000, 1000);
  assert.deepEqual(distrust(f, T), { path: f, kind: 'owner', why: 'owned by uid 1000, not by root' });
});

test('a group-writable file, and a directory writable by others on the way, are refused', () => {
  const d = tmp();
  const f = path.join(d, 'j');
  fs.writeFileSync(f, 'x');
  fs.chmodSync(f, 0o620);
  assert.deepEqual(distrust(f, T), { path: f, kind: 'writable', why: 'writable by group' });
  fs.chmodSync(f, 0o600);
  const sub = path.join(d, 'open');
  fs.mkdirSync(sub);
  fs.chmodSync(sub, 0o777);
  fs.writeFileSync(path.join(sub, 'j'), 'x', { mode: 0o600 });
  assert.deepEqual(distrust(path.join(sub, 'j'), T), {
    path: sub,
    kind: 'writable',
    why: 'writable by others',
  });
});

test('a root-owned sticky directory is accepted only when asked, and only for a root-owned file', () => {
  const sticky = stickyDir();
  const f = path.join(sticky, 'j');
  fs.writeFileSync(f, 'x', { mode: 0o600 });
  const strict = distrust(f, { uid: 0 });
  assert.equal(strict?.why, 'writable by others');
  assert.ok(sticky.startsWith(strict!.path), `${strict!.path} is the sticky directory or above it`);
  assert.equal(distrust(f, T), undefined);
  fs.chownSync(f, 1000, 1000);
  assert.equal(distrust(f, T)?.path, f);
});

test('a symlink is judged by the directory it sits in and by what it points to', () => {
  const d = tmp();
  const user = path.join(d, 'home');
  fs.mkdirSync(user);
  fs.chownSync(user, 1000, 1000);
  const target = path.join(d, 'real');
  fs.writeFileSync(target, 'x', { mode: 0o755 });
  fs.symlinkSync(target, path.join(user, 'link'));
  // the file is root's, but the user can swap the link that leads to it
  assert.equal(distrust(path.join(user, 'link'), T)?.path, user);
  // and a root-owned link to a user-owned file is refused at the file
  fs.chownSync(target, 1000, 1000);
  fs.symlinkSync(target, path.join(d, 'link2'));
  assert.equal(distrust(path.join(d, 'link2'), T)?.path, target);
});

test('kind: a directory where a file is wanted, and a missing path, are refused', () => {
  const d = tmp();
  assert.deepEqual(distrust(d, T), { path: d, kind: 'type', why: 'not a regular file' });
  assert.equal(distrust(d, { ...T, kind: 'dir' }), undefined);
  const missing = path.join(d, 'missing');
  assert.deepEqual(distrust(missing, T), {
    path: missing,
    kind: 'unresolved',
    code: 'ENOENT',
    why: 'cannot be resolved (ENOENT)',
  });
});

test('a symlink another user owns in a root-owned sticky directory is refused, on the way or as the path itself', () => {
  const sticky = stickyDir();
  const rootDir = tmp();
  fs.writeFileSync(path.join(rootDir, 'j'), 'x', { mode: 0o600 });
  const link = path.join(sticky, 'link');
  fs.symlinkSync(rootDir, link);
  // root's own symlink there: only root can replace it
  assert.equal(distrust(path.join(link, 'j'), T), undefined);
  assert.equal(distrust(link, { ...T, kind: 'dir' }), undefined);
  // uid 1000's: they can point it at a directory of theirs whenever they like
  fs.lchownSync(link, 1000, 1000);
  const why = 'a symbolic link owned by uid 1000 in a directory others may write';
  assert.deepEqual(distrust(path.join(link, 'j'), T), { path: link, kind: 'others-entry', why });
  assert.deepEqual(distrust(link, { ...T, kind: 'dir' }), { path: link, kind: 'others-entry', why });
});

test('a second name of a root-owned file, made in a root-owned sticky directory, is refused; in a root-only directory it is not', () => {
  // With fs.protected_hardlinks=0 anyone may link a file of root's they can reach, under a name of their choosing,
  // into a sticky directory: root's file, so owner and mode pass, but not a name root gave it.
  const sticky = stickyDir();
  const rootDir = tmp();
  const orig = path.join(rootDir, 'j');
  fs.writeFileSync(orig, 'x', { mode: 0o600 });
  assert.equal(distrust(path.join(sticky, 'none'), T)?.why.startsWith('cannot be resolved'), true);
  const named = path.join(sticky, 'j');
  fs.linkSync(orig, named);
  const why = 'a hard link (2 names) in a directory others may write';
  assert.deepEqual(distrust(named, T), { path: named, kind: 'others-entry', why });
  // the same two names where only root can make them: trusted
  assert.equal(distrust(orig, T), undefined);
  // one name only, in the sticky directory: trusted
  fs.unlinkSync(orig);
  assert.equal(distrust(named, T), undefined);
  // reached through root's symlink in the sticky directory: the name that counts is still the sticky one
  fs.linkSync(named, orig);
  const link = path.join(sticky, 'via');
  fs.symlinkSync(named, link);
  assert.deepEqual(distrust(link, T), { path: named, kind: 'others-entry', why });
});

test('distrustText makes one sentence of each finding: "X is ..." or "X cannot be ..."', () => {
  const d = tmp();
  const f = path.join(d, 'j');
  fs.writeFileSync(f, 'x', { mode: 0o600 });
  fs.chownSync(f, 1000, 1000);
  assert.equal(distrustText(distrust(f, T)!), `${f} is owned by uid 1000, not by root`);
  assert.equal(distrustText(distrust(d, T)!), `${d} is not a regular file`);
  assert.equal(distrustText(distrust(path.join(d, 'gone'), T)!), `${d}/gone cannot be resolved (ENOENT)`);
  // a directory on the way that cannot be searched (a file in its place: ENOTDIR), as distrustWay finds it
  const g = path.join(d, 'file');
  fs.writeFileSync(g, 'x', { mode: 0o600 });
  const way = distrustWay(path.join(g, 'below', 'j'), T);
  assert.deepEqual(way, {
    path: path.join(g, 'below'),
    kind: 'unreadable',
    code: 'ENOTDIR',
    why: 'cannot be read (ENOTDIR)',
  });
  assert.equal(distrustText(way!), `${g}/below cannot be read (ENOTDIR)`);
});
