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
