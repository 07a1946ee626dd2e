import * as fs from 'node:fs';
import { ErrnoError, type DirEntry, type Fs, type Writer } from './fs.ts';
import { loadSched } from './sched.ts';

function wrap<T>(op: string, path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ErrnoError(code, op, path);
  }
}

/** The real machine: node:fs on system paths, one write(2) per value, never O_CREAT on control files. */
export class RealFs implements Fs {
  readonly root = '/';

  read(path: string): string {
    return wrap('read', path, () => fs.readFileSync(path, 'utf8'));
  }

  write(path: string, value: string): void {
    wrap('write', path, () => {
      const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_TRUNC);
      try {
        const buf = Buffer.from(value);
        const n = fs.writeSync(fd, buf, 0, buf.length);
        if (n !== buf.length) throw Object.assign(new Error('short write'), { code: 'EIO' });
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  openWriter(path: string): Writer {
    const fd = wrap('open', path, () => fs.openSync(path, fs.constants.O_WRONLY));
    return {
      write: (value: string) =>
        wrap('write', path, () => {
          fs.writeSync(fd, value);
        }),
      close: () => fs.closeSync(fd),
    };
  }

  exists(path: string): boolean {
    return fs.existsSync(path);
  }

  isDir(path: string): boolean {
    try {
      return fs.statSync(path).isDirectory();
    } catch {
      return false;
    }
  }

  list(path: string): DirEntry[] {
    return wrap('list', path, () =>
      fs.readdirSync(path, { withFileTypes: true }).map((d) => ({
        name: d.name,
        isDir: d.isDirectory(),
        isSymlink: d.isSymbolicLink(),
      })),
    );
  }

  mkdir(path: string): void {
    wrap('mkdir', path, () => fs.mkdirSync(path));
  }

  rmdir(path: string): void {
    wrap('rmdir', path, () => fs.rmdirSync(path));
  }

  realpath(path: string): string {
    return wrap('realpath', path, () => fs.realpathSync(path));
  }

  getAffinity(tid: number): number[] {
    return loadSched().getAffinity(tid);
  }
  setAffinity(tid: number, cpus: readonly number[]): void {
    loadSched().setAffinity(tid, cpus);
  }
  getScheduler(tid: number): { policy: number; priority: number } {
    return loadSched().getScheduler(tid);
  }
  setScheduler(tid: number, policy: number, priority: number): void {
    loadSched().setScheduler(tid, policy, priority);
  }
  kill(pid: number, signal: NodeJS.Signals): void {
    wrap('kill', `/proc/${pid}`, () => process.kill(pid, signal));
  }
}
