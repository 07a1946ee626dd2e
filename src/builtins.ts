/**
 * node's own objects for node:fs and node:child_process. An ESM import of a built-in module builds a facade of its
 * exports when the importing module is linked, reading every export once: for node:fs that loads its streams and its
 * promises API (5–8 ms of a fresh process natively, and a large part of a hook's run under emulation), none of which
 * the tool uses. process.getBuiltinModule hands out the object itself. node:child_process (systemctl, irqbalance)
 * is loaded on first use.
 */
export const fs = process.getBuiltinModule('node:fs');

/** node:child_process, loaded the first time a command is run. */
export function childProcess(): typeof import('node:child_process') {
  return process.getBuiltinModule('node:child_process');
}
