/**
 * koffi's native addon is loaded straight from the @koromix package beside koffi (src/kernel/koffi.ts), not through
 * koffi's own loader, and only the one a libvirt hook's trust check covers (hook-targets.ts); any other layout is
 * left to koffi's loader. Nothing here changes the machine: getpid(2) is the only C call made.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { resolveHookTargets } from '../../src/kernel/hook-targets.ts';
import { koffiAddon, loadKoffi, loadLibc } from '../../src/kernel/koffi.ts';

const REPO = path.resolve(import.meta.dirname, '../..');
const require = createRequire(path.join(REPO, 'src/kernel/koffi.ts'));
const glibc = fs.existsSync('/lib64/ld-linux-x86-64.so.2') && !fs.existsSync('/lib/ld-musl-x86_64.so.1');
const onThisMachine = process.platform === 'linux' && process.arch === 'x64' && glibc;
const skip = !onThisMachine && 'needs glibc on x64';

describe('koffi, loaded once per run', () => {
  it("here (glibc, x64) the addon is the @koromix package's, beside koffi", { skip }, () => {
    assert.equal(
      koffiAddon(path.join(REPO, 'src/kernel/koffi.ts'))?.path,
      path.join(
        path.dirname(fs.realpathSync(path.join(REPO, 'node_modules/koffi'))),
        '@koromix/koffi-linux-x64/linux_x64/koffi.node',
      ),
    );
  });

  it("loads that addon and none of koffi's loader, and calls the C library through it", { skip }, () => {
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
  });

  describe('other layouts: the addon only where koffi and the hook check take it, else koffi decides', () => {
    const dirs: string[] = [];
    after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
    const mkroot = (): string => {
      const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'vfio-koffi-')));
      dirs.push(root);
      return root;
    };
    const write = (file: string, text: string): void => {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
    };
    /** koffi and its @koromix package at the given versions in DIR/node_modules. */
    const install = (dir: string, koffi = '3.3.4', addon = '3.3.4', withAddon = true): void => {
      write(
        path.join(dir, 'node_modules/koffi/package.json'),
        JSON.stringify({ name: 'koffi', version: koffi, main: 'index.cjs' }),
      );
      write(path.join(dir, 'node_modules/koffi/index.cjs'), '');
      const pkg = path.join(dir, 'node_modules/@koromix/koffi-linux-x64');
      write(path.join(pkg, 'package.json'), JSON.stringify({ version: addon }));
      if (withAddon) write(path.join(pkg, 'linux_x64/koffi.node'), '');
    };
    const addonOf = (dir: string): string =>
      path.join(dir, 'node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node');
    /** The tool's entry in APP/dist, the file the walk starts from (a chunk beside it). */
    const app = (root: string): { entry: string; chunk: string } => {
      const entry = path.join(root, 'app/dist/vfio-isolate.mjs');
      write(entry, '');
      write(path.join(root, 'app/package.json'), '{"type":"module"}');
      return { entry, chunk: path.join(root, 'app/dist/chunks/x.mjs') };
    };
    /** Is `file` inside one of the trees a libvirt hook checks for this entry? */
    const checked = (entry: string, file: string): boolean =>
      resolveHookTargets(process.execPath, entry).trees.some((t) => file.startsWith(t.path + '/'));

    it('the same versions: the addon beside koffi, which the hook checks', { skip }, () => {
      const root = mkroot();
      install(path.join(root, 'app'));
      const { entry, chunk } = app(root);
      assert.equal(koffiAddon(chunk)?.path, addonOf(path.join(root, 'app')));
      assert.ok(checked(entry, koffiAddon(chunk)!.path));
      // a main file deeper in the package (a fresh tree: node keeps the package.json it read): koffi's directory still
      const deep = mkroot();
      install(path.join(deep, 'app'));
      write(
        path.join(deep, 'app/node_modules/koffi/package.json'),
        JSON.stringify({ name: 'koffi', version: '3.3.4', main: 'lib/deep/main.cjs' }),
      );
      write(path.join(deep, 'app/node_modules/koffi/lib/deep/main.cjs'), '');
      assert.equal(koffiAddon(app(deep).chunk)?.path, addonOf(path.join(deep, 'app')));
    });

    it("versions that differ, no addon file, only another architecture's package: none", () => {
      for (const [k, a, file] of [
        ['3.3.4', '3.3.5', true],
        ['3.3.4', '3.3.4', false],
      ] as const) {
        const root = mkroot();
        install(path.join(root, 'app'), k, a, file);
        assert.equal(koffiAddon(app(root).chunk), undefined, `${k} ${a} ${file}`);
      }
      // only the @koromix package of an architecture other than node's (install writes x64's)
      const root = mkroot();
      install(path.join(root, 'app'));
      const other = process.arch === 'x64' ? 'arm64' : 'x64';
      if (other !== 'x64') {
        const modules = path.join(root, 'app/node_modules/@koromix');
        fs.renameSync(path.join(modules, 'koffi-linux-x64'), path.join(modules, `koffi-linux-${other}`));
        fs.renameSync(
          path.join(modules, `koffi-linux-${other}/linux_x64`),
          path.join(modules, `koffi-linux-${other}/linux_${other}`),
        );
      }
      assert.equal(koffiAddon(app(root).chunk), undefined);
    });

    it('a symlinked koffi: the package beside its target, not beside the link', { skip }, () => {
      const root = mkroot();
      install(path.join(root, 'store'));
      const { entry, chunk } = app(root);
      fs.mkdirSync(path.join(root, 'app/node_modules/@koromix'), { recursive: true });
      fs.symlinkSync(path.join(root, 'store/node_modules/koffi'), path.join(root, 'app/node_modules/koffi'));
      // a planted package beside the link is never taken
      fs.cpSync(
        path.join(root, 'store/node_modules/@koromix/koffi-linux-x64'),
        path.join(root, 'app/node_modules/@koromix/koffi-linux-x64'),
        { recursive: true },
      );
      assert.equal(koffiAddon(chunk)?.path, addonOf(path.join(root, 'store')));
      assert.ok(checked(entry, koffiAddon(chunk)!.path));
      fs.rmSync(path.join(root, 'store/node_modules/@koromix'), { recursive: true });
      assert.equal(koffiAddon(chunk), undefined, 'not the package beside the symlink');
    });

    it("koffi's main file a symlink into another koffi: that other koffi's package", { skip }, () => {
      const root = mkroot();
      install(path.join(root, 'other'));
      install(path.join(root, 'app'));
      const { entry, chunk } = app(root);
      fs.rmSync(path.join(root, 'app/node_modules/koffi/index.cjs'));
      fs.symlinkSync(
        path.join(root, 'other/node_modules/koffi/index.cjs'),
        path.join(root, 'app/node_modules/koffi/index.cjs'),
      );
      assert.equal(koffiAddon(chunk)?.path, addonOf(path.join(root, 'other')));
      assert.ok(checked(entry, koffiAddon(chunk)!.path));
    });

    it(
      'a nearer koffi directory node passes over (no main, no index): the outer one, as node takes it',
      { skip },
      () => {
        const root = mkroot();
        install(root);
        const { entry, chunk } = app(root);
        write(path.join(root, 'app/node_modules/koffi/package.json'), '{"version":"3.3.4"}');
        write(
          path.join(root, 'app/node_modules/@koromix/koffi-linux-x64/package.json'),
          '{"version":"3.3.4"}',
        );
        write(path.join(root, 'app/node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node'), '');
        assert.equal(createRequire(chunk).resolve('koffi'), path.join(root, 'node_modules/koffi/index.cjs'));
        assert.equal(koffiAddon(chunk)?.path, addonOf(root));
        assert.ok(checked(entry, koffiAddon(chunk)!.path));
      },
    );

    it('an @koromix package inside koffi (where koffi looks first): left to koffi', { skip }, () => {
      for (const inner of [
        'node_modules',
        'src/node_modules',
        'src/koffi/node_modules',
        'src/koffi/src/node_modules',
      ]) {
        const root = mkroot();
        install(path.join(root, 'app'));
        fs.mkdirSync(path.join(root, 'app/node_modules/koffi', inner, '@koromix/koffi-linux-x64'), {
          recursive: true,
        });
        assert.equal(koffiAddon(app(root).chunk), undefined, inner);
      }
    });

    it("no koffi at all: none (koffi's own loader then reports it)", () => {
      assert.equal(koffiAddon(app(mkroot()).chunk), undefined);
    });
  });
});
