/**
 * koffi's native addon is loaded straight from the @koromix package beside koffi (src/kernel/koffi.ts), not through
 * koffi's own loader; anything that does not match koffi's own choice is left to that loader. Nothing here changes
 * the machine: getpid(2) is the only C call made.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { koffiAddon, loadKoffi, loadLibc } from '../../src/kernel/koffi.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const require = createRequire(path.join(REPO, 'src/kernel/koffi.ts'));
const glibc = fs.existsSync('/lib64/ld-linux-x86-64.so.2') && !fs.existsSync('/lib/ld-musl-x86_64.so.1');
const onThisMachine = process.platform === 'linux' && process.arch === 'x64' && glibc;

describe('koffi, loaded once per run', () => {
  it(
    "here (glibc, x64) the addon is the @koromix package's, beside koffi",
    { skip: !onThisMachine && 'needs glibc on x64' },
    () => {
      assert.equal(
        koffiAddon(path.join(REPO, 'src/kernel'))?.path,
        path.join(
          path.dirname(fs.realpathSync(path.join(REPO, 'node_modules/koffi'))),
          '@koromix/koffi-linux-x64/linux_x64/koffi.node',
        ),
      );
    },
  );

  it(
    "loads that addon and none of koffi's loader, and calls the C library through it",
    { skip: !onThisMachine && 'needs glibc on x64' },
    () => {
      const loaderOf = (): string[] =>
        Object.keys(require.cache).filter((f) =>
          f.includes(`${path.sep}node_modules${path.sep}koffi${path.sep}`),
        );
      assert.deepEqual(loaderOf(), [], 'this test process had not loaded koffi yet');
      const koffi = loadKoffi();
      assert.deepEqual(loaderOf(), [], "koffi's loader did not run");
      const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'node_modules/koffi/package.json'), 'utf8'));
      assert.equal(koffi.version, pkg.version);
      assert.equal(loadLibc().func('int getpid()')(), process.pid);
      assert.equal(loadKoffi(), koffi, 'loaded once');
    },
  );

  describe('anything else is left to koffi', () => {
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
    /** A node_modules with koffi and @koromix/koffi-linux-x64 at the given versions; returns the directory above it. */
    const tree = (koffi: string, addon: string, withAddon = true): string => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vfio-koffi-'));
      dirs.push(root);
      const nm = path.join(root, 'node_modules');
      fs.mkdirSync(path.join(nm, 'koffi'), { recursive: true });
      fs.writeFileSync(
        path.join(nm, 'koffi/package.json'),
        JSON.stringify({ name: 'koffi', version: koffi, main: 'index.cjs' }),
      );
      fs.writeFileSync(path.join(nm, 'koffi/index.cjs'), '');
      const pkg = path.join(nm, '@koromix/koffi-linux-x64');
      fs.mkdirSync(path.join(pkg, 'linux_x64'), { recursive: true });
      fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ version: addon }));
      if (withAddon) fs.writeFileSync(path.join(pkg, 'linux_x64/koffi.node'), '');
      return root;
    };
    /** What node's require from inside `dir` resolves koffi to. */
    const nodeFinds = (dir: string): string => createRequire(path.join(dir, 'x.js')).resolve('koffi');

    it('the same versions: the addon', { skip: !onThisMachine && 'needs glibc on x64' }, () => {
      const r = tree('3.3.4', '3.3.4');
      assert.equal(
        koffiAddon(r)?.path,
        path.join(path.dirname(nodeFinds(r)), '../@koromix/koffi-linux-x64/linux_x64/koffi.node'),
      );
    });

    it('versions that differ, no addon file, or an architecture without a known loader: none', () => {
      assert.equal(koffiAddon(tree('3.3.4', '3.3.5'))?.path, undefined);
      assert.equal(koffiAddon(tree('3.3.4', '3.3.4', false))?.path, undefined);
      assert.equal(koffiAddon(tree('3.3.4', '3.3.4'), 'ia32')?.path, undefined);
    });

    it(
      'koffi is found as node finds it: the nearest node_modules that has it',
      {
        skip: !onThisMachine && 'needs glibc on x64',
      },
      () => {
        const root = tree('3.3.4', '3.3.4');
        // a node_modules on the way without koffi is passed over, and so is a directory named node_modules
        fs.mkdirSync(path.join(root, 'a/node_modules/b/node_modules'), { recursive: true });
        const deep = path.join(root, 'a/node_modules/b');
        assert.equal(nodeFinds(deep), nodeFinds(root));
        assert.equal(koffiAddon(deep)?.path, koffiAddon(root)?.path);
        assert.notEqual(koffiAddon(deep)?.path, undefined);
        // a nearer koffi (the one node loads) without the addon beside it: none, not the outer one's
        fs.mkdirSync(path.join(root, 'a/node_modules/koffi'), { recursive: true });
        fs.writeFileSync(
          path.join(root, 'a/node_modules/koffi/package.json'),
          JSON.stringify({ version: '3.3.4' }),
        );
        assert.equal(koffiAddon(deep)?.path, undefined);
        // nearer still: a koffi directory without package.json (node loads its index.js), or a koffi.js file
        fs.rmSync(path.join(root, 'a/node_modules/koffi'), { recursive: true });
        fs.mkdirSync(path.join(root, 'a/node_modules/b/node_modules/koffi'));
        assert.equal(koffiAddon(deep)?.path, undefined);
        fs.rmSync(path.join(root, 'a/node_modules/b/node_modules/koffi'), { recursive: true });
        assert.notEqual(koffiAddon(deep)?.path, undefined);
        fs.writeFileSync(path.join(root, 'a/node_modules/b/node_modules/koffi.js'), '');
        assert.equal(koffiAddon(deep)?.path, undefined);
        assert.equal(koffiAddon(root)?.path, koffiAddon(path.join(root, 'a'))?.path);
        // a koffi.js beside the koffi directory is what node loads
        fs.writeFileSync(path.join(root, 'node_modules/koffi.js'), '');
        assert.equal(koffiAddon(root)?.path, undefined);
      },
    );

    it(
      'a symlinked koffi: the package beside its target; one inside koffi: left to koffi',
      {
        skip: !onThisMachine && 'needs glibc on x64',
      },
      () => {
        const target = tree('3.3.4', '3.3.4');
        const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vfio-koffi-'));
        dirs.push(root);
        fs.mkdirSync(path.join(root, 'node_modules/@koromix/koffi-linux-x64/linux_x64'), { recursive: true });
        fs.writeFileSync(
          path.join(root, 'node_modules/@koromix/koffi-linux-x64/package.json'),
          '{"version":"3.3.4"}',
        );
        fs.writeFileSync(path.join(root, 'node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node'), '');
        fs.symlinkSync(path.join(target, 'node_modules/koffi'), path.join(root, 'node_modules/koffi'));
        assert.equal(
          koffiAddon(root)?.path,
          path.join(fs.realpathSync(target), 'node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node'),
        );
        fs.rmSync(path.join(target, 'node_modules/@koromix'), { recursive: true });
        assert.equal(koffiAddon(root)?.path, undefined, 'not the package beside the symlink');
        const inner = tree('3.3.4', '3.3.4');
        fs.mkdirSync(path.join(inner, 'node_modules/koffi/node_modules/@koromix/koffi-linux-x64'), {
          recursive: true,
        });
        assert.equal(koffiAddon(inner)?.path, undefined);
      },
    );

    it("no koffi at all: none (koffi's own loader then reports it)", () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vfio-koffi-'));
      dirs.push(root);
      assert.equal(koffiAddon(root)?.path, undefined);
    });
  });
});
