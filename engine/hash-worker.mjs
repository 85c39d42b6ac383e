// Worker thread for cold hashing: takes batches of file paths (NUL-joined), hashes each with one reused read buffer,
// and answers with the digests (32 bytes a file) and the open files' stats as binary buffers: no per-file garbage crosses over.
// Plain JS (not TS) so it starts the same whether the engine runs under tsx's loader or its register API.
import { parentPort } from 'node:worker_threads';
import { hashBatch } from './hash-file.mjs';

const buf = Buffer.allocUnsafe(1 << 20);
parentPort.on('message', ({ id, files }) => {
  const { digests, stats, errors } = hashBatch(files.split('\0'), buf);
  parentPort.postMessage({ id, digests, stats, errors }, [digests.buffer, stats.buffer]);
});
