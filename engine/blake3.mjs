// BLAKE3 from @napi-rs/blake-hash, its native binding loaded directly. The package's own loader asks
// `process.report` which C library this is, and in a process running tsx's loader thread that report
// costs ~12 ms: every command paid it at start-up. detect-libc answers from the node binary's ELF
// interpreter instead. Anything unexpected falls back to the package's loader.
// Plain JS: the hash workers import it too.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

function load() {
  if (process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64')) {
    try {
      const { familySync, MUSL } = require('detect-libc');
      return require(`@napi-rs/blake-hash-linux-${process.arch}-${familySync() === MUSL ? 'musl' : 'gnu'}`);
    } catch {
      // not installed under that name: the package knows
    }
  }
  return require('@napi-rs/blake-hash');
}

/** @type {typeof import('@napi-rs/blake-hash')} */
const binding = load();
export const { blake3, Blake3Hasher } = binding;
