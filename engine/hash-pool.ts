// Hashing that overlaps with the walk: files that need reading are queued as they are found, and once
// enough are queued, batches go to worker threads while the main thread keeps stat'ing. Small jobs
// (a few changed files) are hashed on the main thread and never pay for starting a worker.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { hashBatch } from './hash-file.mjs';

const BATCH = 1024;

/** A file's digest (32 bytes) and its (size, mtime ms, inode, ctime ms) as read from the open file. */
export type Hashed = { digest: Buffer; stats: Float64Array } | Error;

interface Batch {
  files: string[];
  /** Called with this batch's digests (32 bytes a file), stats (4 a file) and per-file errors. */
  done: (digests: Buffer, stats: Float64Array, errors: Array<[number, string]>) => void;
}

/**
 * Where a file's results go without a callback per file (a folder of 70,000 files would otherwise make
 * 140,000 short-lived objects on the main thread): its digest into `hashes` and its stats into `stats`,
 * at `index`; a failure into `errors`.
 */
export interface Sink {
  hashes: Buffer;
  stats: Float64Array;
  errors: string[];
  /** The file's name for an error message (made only when one is needed). */
  keyOf: (index: number) => string;
}

/** A callback, or a sink with the file's index in it. */
type Target = ((h: Hashed) => void) | Sink;

export class HashPool {
  private queue: Batch['files'] = [];
  private targets: Target[] = [];
  private indices: number[] = [];
  private workers: Worker[] = [];
  private inFlight = new Map<
    number,
    { worker: Worker; batch: Batch; resolve: () => void; reject: (e: Error) => void }
  >();
  private load = new Map<Worker, number>();
  private pending: Promise<void>[] = [];
  private nextId = 0;

  constructor(private readonly threads = Math.min(availableParallelism(), 4)) {}

  /**
   * Queue a file. Its digest and stats (or the error) go to `target` when its batch is hashed: a
   * callback, or a slot in a sink.
   */
  add(file: string, target: Target, index = 0): void {
    this.queue.push(file);
    this.targets.push(target);
    this.indices.push(index);
    if (this.queue.length >= BATCH && this.threads > 1) this.flush();
  }

  private take(): Batch {
    const files = this.queue;
    const targets = this.targets;
    const indices = this.indices;
    this.queue = [];
    this.targets = [];
    this.indices = [];
    return {
      files,
      done: (digests, stats, errors) => {
        const failed = new Map(errors);
        for (const [i, t] of targets.entries()) {
          const err = failed.get(i);
          if (typeof t === 'function') {
            t(
              err !== undefined
                ? new Error(err)
                : { digest: digests.subarray(i * 32, i * 32 + 32), stats: stats.subarray(i * 4, i * 4 + 4) },
            );
          } else if (err !== undefined) t.errors.push(`${t.keyOf(indices[i])}: ${err}`);
          else {
            const index = indices[i];
            digests.copy(t.hashes, index * 32, i * 32, i * 32 + 32);
            const at = index * 4;
            t.stats[at] = stats[i * 4];
            t.stats[at + 1] = stats[i * 4 + 1];
            t.stats[at + 2] = stats[i * 4 + 2];
            t.stats[at + 3] = stats[i * 4 + 3];
          }
        }
      },
    };
  }

  private flush(): void {
    const batch = this.take();
    if (this.workers.length < this.threads) {
      // No inherited --import (tsx's loader would start in every worker): the worker is plain JS.
      const w = new Worker(new URL('./hash-worker.mjs', import.meta.url), { execArgv: [] });
      w.on(
        'message',
        (m: { id: number; digests: Uint8Array; stats: Float64Array; errors: Array<[number, string]> }) => {
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
        // One string, not 1024: cloning it costs a fraction. NUL cannot occur in a path.
        worker.postMessage({ id, files: batch.files.join('\0') });
      }),
    );
  }

  /** Hash whatever is queued (here, if no worker was needed) and wait for every batch. */
  async drain(): Promise<void> {
    if (this.queue.length > 0) {
      if (this.workers.length > 0) this.flush();
      else {
        const { files, done } = this.take();
        const { digests, stats, errors } = hashBatch(files, Buffer.allocUnsafe(1 << 20));
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
