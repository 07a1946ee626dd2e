/**
 * Diagnostics on stderr: warnings always, -v step lines, -d paths and values. Colour is decided for each stream on
 * its own (useColour), so a redirected stderr never receives escapes because stdout is a terminal.
 */
import type { EventEmitter } from 'node:events';

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
  /** stdout is a terminal. */
  isTTY: boolean;
  /** stderr is a terminal (progress lines and coloured warnings go there). */
  errIsTTY?: boolean;
}

/**
 * Whether to colour what goes to one stream (`out`: reports; `err`: warnings). FORCE_COLOR set to anything but
 * "", "0" or "false" forces colour (and wins over NO_COLOR, as in Node itself); FORCE_COLOR=0/false and a
 * non-empty NO_COLOR forbid it; otherwise colour only when that stream is a terminal and TERM is not "dumb".
 */
export function useColour(streams: Streams, env: NodeJS.ProcessEnv, stream: 'out' | 'err' = 'out'): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false';
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  const tty = stream === 'out' ? streams.isTTY : Boolean(streams.errIsTTY);
  return tty && env.TERM !== 'dumb';
}

/** The part of a process stream the writer needs (process.stdout, process.stderr, or a test double). */
export type WriteTarget = Pick<EventEmitter, 'on'> & { write(s: string): unknown };

/**
 * A writer for one of the process's output streams. When the reader goes away (EPIPE: `vfio-isolate ... | head -1`)
 * the rest of that stream's output is dropped quietly, with no stack trace, and the run goes on to its normal end: a
 * change under way is never cut short because nobody reads its report. Any other write error is said once on
 * `report` (stderr) and makes the exit status 1.
 */
export function pipeSafeWriter(
  stream: WriteTarget,
  report: (line: string) => void = () => {},
): (s: string) => void {
  let closed = false;
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (closed) return;
    closed = true;
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') return;
    process.exitCode = 1;
    report(`vfio-isolate: cannot write the output: ${e.code ?? e.message}\n`);
  });
  return (s) => {
    if (!closed) stream.write(s);
  };
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
