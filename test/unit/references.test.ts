/**
 * Comments and documents point only to what the repository holds: no decisions file, no `../shared/...` or `/work/...`
 * paths outside it; a comment's `README.md, "Section"` names a heading of README.md; a document's relative link names
 * a file that exists.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(join(REPO, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && ext.test(e.name))
    .map((e) => relative(REPO, join(e.parentPath, e.name)));
}

const SOURCES = [...files('src', /\.ts$/), ...files('scripts', /\.(m?js|ts)$/), ...files('bench', /\.ts$/)];
const DOCS = ['README.md', ...files('docs', /\.md$/), 'bench/README.md', 'test/vm/README.md'];
const README = readFileSync(join(REPO, 'README.md'), 'utf8');
const HEADINGS = README.split('\n').filter((l) => /^#+ /.test(l));

describe('references stay inside the repository', () => {
  test('the file lists are not empty', () => {
    assert.ok(SOURCES.includes('src/cpus/notation.ts') && SOURCES.includes('src/steps/journal.ts'));
    assert.ok(DOCS.length >= 4);
  });

  for (const f of [...SOURCES, ...DOCS]) {
    test(`${f}: no decisions file, no ../shared or /work path`, () => {
      const text = readFileSync(join(REPO, f), 'utf8');
      for (const bad of [/decisions\.md/, /\.\.\/shared\//, /shared\/reference/, /\/work\//]) {
        const line = text.split('\n').findIndex((l) => bad.test(l));
        assert.equal(line, -1, `${f}:${line + 1} points outside the repository: ${text.split('\n')[line]}`);
      }
    });
  }

  test('README.md, "Section" in a comment names a heading of README.md', () => {
    let seen = 0;
    for (const f of SOURCES) {
      for (const m of readFileSync(join(REPO, f), 'utf8').matchAll(/README\.md, "([^"]+)"/g)) {
        seen++;
        assert.ok(
          HEADINGS.some((h) => h.includes(m[1]!)),
          `${f}: README.md has no section "${m[1]}"`,
        );
      }
    }
    assert.ok(seen >= 2, 'notation.ts and journal.ts refer to README sections');
  });

  test("README's layout names every file of src/commands/ and src/cli/usage.ts", () => {
    const how = README.slice(README.indexOf('## How it works'), README.indexOf('## Guarantees and limits'));
    assert.ok(how.length > 0);
    for (const f of files('src/commands', /\.ts$/))
      assert.ok(
        how.includes(`\`${f.slice('src/commands/'.length)}\``),
        `${f} is not in README's "How it works"`,
      );
    assert.ok(how.includes('`src/cli/usage.ts`'));
  });

  for (const f of DOCS) {
    test(`${f}: relative links name existing files`, () => {
      const text = readFileSync(join(REPO, f), 'utf8');
      for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        assert.ok(existsSync(join(REPO, dirname(f), target)), `${f}: link to ${target} is broken`);
      }
    });
  }
});
