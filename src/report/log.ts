/** Diagnostics on stderr: warnings always, -v step lines, -d paths and values. Colour only on a TTY. */
export interface Log {
  verbose: boolean;
  debug: boolean;
  warn(msg: string): void;
  info(msg: string): void;
  debugLine(msg: string): void;
  /** A progress line for long operations, on a terminal only (stderr); `done === total` clears it. */
  progress(label: string, done: number, total: number): void;
}

export interface Streams {
  out: (s: string) => void;
  err: (s: string) => void;
  isTTY: boolean;
  /** stderr is a terminal (progress lines go there). */
  errIsTTY?: boolean;
}

export function useColour(streams: Streams, env: NodeJS.ProcessEnv): boolean {
  return streams.isTTY && !('NO_COLOR' in env && env.NO_COLOR !== '') && env.TERM !== 'dumb';
}

export function makeLog(streams: Streams, verbose: boolean, debug: boolean, colour: boolean): Log {
  const yellow = (s: string): string => (colour ? `\x1b[33m${s}\x1b[0m` : s);
  return {
    verbose,
    debug,
    warn: (m) => streams.err(`vfio-isolate: ${yellow('warning:')} ${m}\n`),
    info: (m) => {
      if (verbose || debug) streams.err(`vfio-isolate: ${m}\n`);
    },
    debugLine: (m) => {
      if (debug) streams.err(`vfio-isolate: debug: ${m}\n`);
    },
    progress: (label, done, total) => {
      if (!streams.errIsTTY) return;
      streams.err(done >= total ? '\r\x1b[K' : `\r\x1b[K${label}: ${done}/${total}`);
    },
  };
}
