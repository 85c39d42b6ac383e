// Worker thread for cold hashing: hashes a slice of files with one reused read buffer.
// Plain JS (not TS) so it starts the same whether the engine runs under tsx's loader or its register API.
import { parentPort, workerData } from 'node:worker_threads';
import { hashFileInto } from './hash-file.mjs';

const buf = Buffer.allocUnsafe(1 << 20);
const hashes = workerData.files.map((f) => {
  try {
    return hashFileInto(f, buf);
  } catch (e) {
    return { error: String(e.message) };
  }
});
parentPort.postMessage(hashes);
