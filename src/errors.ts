/** Typed errors: every error the user sees is one line, with an optional hint, and an exit code. */
export class VfioError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'VfioError';
  }
}

/** Bad usage, detected before any change: exit 2. */
export class UsageError extends VfioError {
  constructor(message: string, hint?: string) {
    super(message, 2, hint);
    this.name = 'UsageError';
  }
}

/** A runtime failure (state, permissions, kernel refusal): exit 1. */
export class RuntimeFailure extends VfioError {
  constructor(message: string, hint?: string) {
    super(message, 1, hint);
    this.name = 'RuntimeFailure';
  }
}

/**
 * A file the tool reads could not be looked at: lstat(2) or readdir(2) failed with `code`, which is not "nothing is
 * there" (EACCES for a user who is not root). Never taken for a missing file: exit 1.
 */
export class CannotRead extends RuntimeFailure {
  constructor(
    /** What the file is, as the message names it: "journal", "reservation registry", "run directory". */
    what: string,
    readonly path: string,
    readonly code: string,
  ) {
    super(
      `${what} ${path} cannot be read (${code})`,
      // root that is refused (no CAP_DAC_OVERRIDE: NFS root_squash, a user namespace) is not helped by sudo
      (code === 'EACCES' || code === 'EPERM') && (process.geteuid?.() ?? 0) !== 0
        ? 'must run as root (try sudo)'
        : undefined,
    );
    this.name = 'CannotRead';
  }
}
