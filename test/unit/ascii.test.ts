/**
 * The shipped bundle is pure ASCII (V8 reads a source with any non-ASCII character as two-byte, doubling its size in
 * memory), and no string the tool prints from src/ holds a non-ASCII character (esbuild would escape it as \uXXXX,
 * which keeps the file ASCII but still makes two-byte strings, and terminals without UTF-8 show garbage).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import ts from 'typescript';

function files(dir: string, ext: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory()
        ? files(path.join(dir, e.name), ext)
        : e.name.endsWith(ext)
          ? [path.join(dir, e.name)]
          : [],
    );
}

/** Non-ASCII characters in the string, template and regex literals of one TypeScript source (not in comments). */
export function nonAsciiLiterals(source: string): { line: number; text: string }[] {
  const file = ts.createSourceFile('x.ts', source, ts.ScriptTarget.Latest, true);
  const found: { line: number; text: string }[] = [];
  const visit = (node: ts.Node): void => {
    if (
      (ts.isStringLiteral(node) ||
        ts.isNoSubstitutionTemplateLiteral(node) ||
        ts.isTemplateHead(node) ||
        ts.isTemplateMiddle(node) ||
        ts.isTemplateTail(node) ||
        ts.isRegularExpressionLiteral(node)) &&
      /[^\t\n\r -~]/.test(node.getText(file))
    ) {
      const line = file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1;
      found.push({ line, text: node.getText(file) });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

describe('ASCII only', () => {
  before(() => {
    const b = spawnSync(process.execPath, ['scripts/build.mjs'], { encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
  });

  it('every built dist/*.mjs file is pure ASCII', () => {
    const built = files('dist', '.mjs');
    assert.ok(built.includes(path.join('dist', 'vfio-isolate.mjs')), String(built));
    for (const f of built) {
      const bytes = fs.readFileSync(f);
      const at = bytes.findIndex((b) => b > 0x7f);
      if (at >= 0) {
        const text = bytes.toString('utf8');
        const line = bytes.subarray(0, at).toString('utf8').split('\n').length;
        assert.fail(`${f}:${line} is not ASCII: ${text.split('\n')[line - 1]!.trim().slice(0, 120)}`);
      }
    }
  });

  it('no string or template literal in src/ holds a non-ASCII character', () => {
    const found = files('src', '.ts').flatMap((f) =>
      nonAsciiLiterals(fs.readFileSync(f, 'utf8')).map((x) => `${f}:${x.line}: ${x.text.slice(0, 80)}`),
    );
    assert.deepEqual(found, []);
  });

  it('the literal scanner finds non-ASCII in strings, templates and template continuations, not in comments', () => {
    const src = [
      "const a = 'x → y'; // comment →",
      '/** doc … */',
      'const b = `a ${a} ← b`;',
      'const c = `${a}`;',
      'const d = `${a} ok ${c} … end`;',
    ].join('\n');
    assert.deepEqual(
      nonAsciiLiterals(src).map((x) => x.line),
      [1, 3, 5],
    );
  });
});
