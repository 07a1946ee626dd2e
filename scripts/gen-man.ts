/**
 * Generates man/vfio-isolate.1 from the command table and man/vfio-isolate.toml.5 (the profile format).
 *   node --import tsx scripts/gen-man.ts           write the pages (npm run man; also part of npm run build)
 *   node --import tsx scripts/gen-man.ts --check   exit 1 when a checked-in page is out of date
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderMan, renderProfileMan } from '../src/cli/man.ts';
import { COMMANDS } from '../src/cli/table.ts';

export const MAN_PATH = fileURLToPath(new URL('../man/vfio-isolate.1', import.meta.url));
export const PROFILE_MAN_PATH = fileURLToPath(new URL('../man/vfio-isolate.toml.5', import.meta.url));

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export function generateMan(): string {
  return renderMan(COMMANDS, { version: version() });
}

export function generateProfileMan(): string {
  return renderProfileMan({ version: version() });
}

function readPage(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const [file, page] of [
    [MAN_PATH, generateMan()],
    [PROFILE_MAN_PATH, generateProfileMan()],
  ] as const) {
    if (readPage(file) === page) continue;
    if (process.argv.includes('--check')) {
      console.error(`${file} is out of date; run npm run man`);
      process.exitCode = 1;
    } else writeFileSync(file, page);
  }
}
