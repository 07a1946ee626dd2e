const fs = process.getBuiltinModule('node:fs');
/** Make a rename or a new file in DIR durable: fsync the directory (best effort: some file systems refuse). */

export function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    /* best effort */
  }
}
