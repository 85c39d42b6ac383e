// Worker thread for cold hashing: takes batches of file paths, hashes each with one reused read buffer,
// and answers with the digests (32 bytes a file) and the open files' stats as binary buffers: no per-file garbage crosses over.
// Plain JS (not TS) so it starts the same whether the engine runs under tsx's loader or its register API.
import { parentPort } from 'node:worker_threads';
import { hashFileTo } from './hash-file.mjs';

const buf = Buffer.allocUnsafe(1 << 20);
parentPort.on('message', ({ id, files }) => {
  const digests = Buffer.alloc(files.length * 32);
  const stats = new BigUint64Array(files.length * 4);
  const errors = [];
  for (let i = 0; i < files.length; i++) {
    try {
      hashFileTo(files[i], buf, digests, i * 32, stats);
    } catch (e) {
      errors.push([i, String(e.message)]);
    }
  }
  parentPort.postMessage({ id, digests, stats, errors }, [digests.buffer, stats.buffer]);
});
