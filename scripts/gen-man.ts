/**
 * Generates man/vfio-isolate.1 from the command table.
 *   node --import tsx scripts/gen-man.ts           write the page (npm run man; also part of npm run build)
 *   node --import tsx scripts/gen-man.ts --check   exit 1 when the checked-in page is out of date
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderMan } from '../src/cli/man.ts';
import { COMMANDS } from '../src/cli/table.ts';

export const MAN_PATH = fileURLToPath(new URL('../man/vfio-isolate.1', import.meta.url));

export function generateMan(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return renderMan(COMMANDS, { version: pkg.version });
}

function readPage(): string | undefined {
  try {
    return readFileSync(MAN_PATH, 'utf8');
  } catch {
    return undefined;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const page = generateMan();
  if (process.argv.includes('--check')) {
    if (readPage() !== page) {
      console.error('man/vfio-isolate.1 is out of date; run npm run man');
      process.exitCode = 1;
    }
  } else if (readPage() !== page) {
    writeFileSync(MAN_PATH, page);
  }
}
