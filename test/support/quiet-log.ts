/** A Log that prints nothing, for tests that call the steps directly. */
import type { Log } from '../../src/report/log.ts';

export const quiet: Log = {
  verbose: false,
  debug: false,
  warn: () => {},
  info: () => {},
  debugLine: () => {},
  progress: () => {},
};
