declare const __VERSION__: string | undefined;
/** Replaced by esbuild at build time; read from package.json when running from source. */
export const VERSION: string = typeof __VERSION__ === 'string' ? __VERSION__ : '1.0.0-alpha.1';
