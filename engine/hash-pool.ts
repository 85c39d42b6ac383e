// Hashing that overlaps with the walk: files that need reading are queued as they are found, and once
// enough are queued, batches go to worker threads while the main thread keeps stat'ing. Small jobs
// (a few changed files) are hashed on the main thread and never pay for starting a worker.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { hashFileTo } from './hash-file.mjs';

const BATCH = 1024;

/** A file's digest (32 bytes) and its (size, mtime ns, inode, ctime ns) as read from the open file. */
export type Hashed = { digest: Buffer; stats: BigUint64Array } | Error;

interface Batch {
  files: string[];
  /** Called with this batch's digests (32 bytes a file), stats (4 a file) and per-file errors. */
  done: (digests: Buffer, stats: BigUint64Array, errors: Array<[number, string]>) => void;
}

export class HashPool {
  private queue: Batch['files'] = [];
  private callbacks: Array<(h: Hashed) => void> = [];
  private workers: Worker[] = [];
  private inFlight = new Map<
    number,
    { worker: Worker; batch: Batch; resolve: () => void; reject: (e: Error) => void }
  >();
  private load = new Map<Worker, number>();
  private pending: Promise<void>[] = [];
  private nextId = 0;

  constructor(private readonly threads = Math.min(availableParallelism(), 4)) {}

  /** Queue a file; `cb` gets its digest and stats (or the error) when its batch is hashed. */
  add(file: string, cb: (h: Hashed) => void): void {
    this.queue.push(file);
    this.callbacks.push(cb);
    if (this.queue.length >= BATCH && this.threads > 1) this.flush();
  }

  private take(): Batch {
    const files = this.queue;
    const cbs = this.callbacks;
    this.queue = [];
    this.callbacks = [];
    return {
      files,
      done: (digests, stats, errors) => {
        const failed = new Map(errors);
        cbs.forEach((cb, i) => {
          const err = failed.get(i);
          cb(
            err !== undefined
              ? new Error(err)
              : { digest: digests.subarray(i * 32, i * 32 + 32), stats: stats.subarray(i * 4, i * 4 + 4) },
          );
        });
      },
    };
  }

  private flush(): void {
    const batch = this.take();
    if (this.workers.length < this.threads) {
      const w = new Worker(new URL('./hash-worker.mjs', import.meta.url));
      w.on(
        'message',
        (m: { id: number; digests: Uint8Array; stats: BigUint64Array; errors: Array<[number, string]> }) => {
          const job = this.inFlight.get(m.id);
          if (!job) return;
          this.inFlight.delete(m.id);
          this.load.set(job.worker, (this.load.get(job.worker) ?? 1) - 1);
          job.batch.done(Buffer.from(m.digests.buffer, m.digests.byteOffset, m.digests.byteLength), m.stats, m.errors);
          job.resolve();
        },
      );
      w.on('error', (e) => {
        for (const [id, job] of this.inFlight) {
          if (job.worker === w) {
            this.inFlight.delete(id);
            job.reject(e);
          }
        }
      });
      this.workers.push(w);
      this.load.set(w, 0);
    }
    // The least busy worker takes it.
    const worker = this.workers.reduce((a, b) => ((this.load.get(a) ?? 0) <= (this.load.get(b) ?? 0) ? a : b));
    this.load.set(worker, (this.load.get(worker) ?? 0) + 1);
    const id = this.nextId++;
    this.pending.push(
      new Promise<void>((resolve, reject) => {
        this.inFlight.set(id, { worker, batch, resolve, reject });
        worker.postMessage({ id, files: batch.files });
      }),
    );
  }

  /** Hash whatever is queued (here, if no worker was needed) and wait for every batch. */
  async drain(): Promise<void> {
    if (this.queue.length > 0) {
      if (this.workers.length > 0) this.flush();
      else {
        const { files, done } = this.take();
        const buf = Buffer.allocUnsafe(1 << 20);
        const digests = Buffer.alloc(files.length * 32);
        const stats = new BigUint64Array(files.length * 4);
        const errors: Array<[number, string]> = [];
        for (const [i, f] of files.entries()) {
          try {
            hashFileTo(f, buf, digests, i * 32, stats);
          } catch (e) {
            errors.push([i, (e as Error).message]);
          }
        }
        done(digests, stats, errors);
      }
    }
    try {
      await Promise.all(this.pending);
    } finally {
      this.pending = [];
      await Promise.all(this.workers.map((w) => w.terminate()));
      this.workers = [];
      this.load.clear();
    }
  }
}
