// The downloader shared by the download stage's metadata, images and labels: one file at a time here,
// many at once in fetch-many.ts.
//
//   dest.part  <- bytes so far (a rerun resumes it with an HTTP Range request)
//   verify size + md5 of the whole file, then rename dest.part -> dest
//
// Retries with backoff on connection errors, 5xx and 429 (honouring Retry-After); fails at once, with the
// file and what to do named, on 403 / 404, on an HTML page where a file was expected (Google Drive's quota
// and virus-scan pages), and on a checksum that stays wrong after the retries.

import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type Dispatcher, request } from 'undici';

export interface FetchOptions {
  /** Expected size in bytes and md5 (hex), when the source publishes them (FFHQ's metadata does). */
  size?: number;
  md5?: string;
  /** Attempts in all, for errors worth retrying. */
  attempts?: number;
  /** First backoff in ms; doubles each retry. */
  backoffMs?: number;
  signal?: AbortSignal;
  /** Bytes received so far for this file (resumed bytes included), for progress bars. */
  onBytes?: (delta: number) => void;
  /** An HTML page is a legitimate answer (a page being downloaded on purpose). */
  allowHtml?: boolean;
  /** The caller already made dest's folder (saves a mkdir per file when fetching thousands). */
  dirExists?: boolean;
  /** The caller knows there is no `dest.part` to resume (saves a stat per file). */
  noPart?: boolean;
}

export interface FetchResult {
  bytes: number;
  /** Bytes that came over the network this time (less than `bytes` when a partial file was resumed). */
  transferred: number;
  /** The file's md5 (hex), computed when `md5` was asked for. */
  md5?: string;
  resumed: boolean;
}

/** A failure worth no retry: the message says what happened and what to do. */
export class DownloadError extends Error {
  constructor(
    message: string,
    readonly url: string,
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason);
      },
      { once: true },
    );
  });

async function md5Of(file: string): Promise<string> {
  const h = createHash('md5');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

/**
 * Files up to this size are fetched into memory and written once (restarted, not resumed, if the
 * connection drops: cheap at this size); bigger ones stream into the part file and resume.
 */
const SMALL = 256 * 1024;

const looksLikeHtml = (head: Buffer) => /^\s*(<!doctype html|<html)/i.test(head.subarray(0, 256).toString('latin1'));

interface Response {
  status: number;
  header(name: string): string | undefined;
  body: Dispatcher.ResponseData['body'];
}

/**
 * GET with undici's `request` (the engine under Node's `fetch`, without the web-streams layer that
 * costs ~0.5 ms a small file), following redirects as Drive's links need, resuming from `from`.
 */
async function get(url: string, from: number, signal?: AbortSignal): Promise<Response> {
  let target = url;
  for (let hop = 0; hop < 6; hop++) {
    const res = await request(target, { method: 'GET', headers: from > 0 ? { range: `bytes=${from}-` } : {}, signal });
    const header = (name: string) => {
      const v = res.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const location = header('location');
    if (res.statusCode >= 300 && res.statusCode < 400 && location) {
      await res.body.dump();
      target = new URL(location, target).href;
      continue;
    }
    return { status: res.statusCode, header, body: res.body };
  }
  throw new DownloadError(`${url}: too many redirects`, url);
}

/**
 * One attempt: resume `part` from its current length; returns the bytes transferred, and for a small
 * file the bytes themselves (nothing written yet).
 */
async function attempt(
  url: string,
  part: string,
  opts: FetchOptions,
  firstAttempt: boolean,
): Promise<{ transferred: number; resumed: boolean; data?: Buffer }> {
  const have = firstAttempt && opts.noPart ? 0 : (statSync(part, { throwIfNoEntry: false })?.size ?? 0);
  const res = await get(url, have, opts.signal);
  if (res.status === 416 && have > 0) {
    // The part is already whole (or longer than the file): let verification decide.
    await res.body.dump();
    return { transferred: 0, resumed: true };
  }
  if (res.status === 404) throw new DownloadError(`${url}: not found (HTTP 404); check data.mirror / the URL`, url);
  if (res.status === 401 || res.status === 403) {
    throw new DownloadError(
      `${url}: access denied (HTTP ${res.status}); Google Drive answers this way when the file's download quota is used up: try again in 24 h or set data.mirror`,
      url,
    );
  }
  if (res.status === 429 || res.status >= 500) {
    const wait = Number(res.header('retry-after'));
    await res.body.dump();
    const err = new DownloadError(`${url}: HTTP ${res.status}`, url, true);
    (err as DownloadError & { retryAfterMs?: number }).retryAfterMs =
      Number.isFinite(wait) && wait > 0 ? wait * 1000 : undefined;
    throw err;
  }
  if (res.status < 200 || res.status > 299) {
    await res.body.dump();
    throw new DownloadError(`${url}: HTTP ${res.status}`, url, res.status >= 500);
  }
  const resumed = res.status === 206;
  const type = res.header('content-type') ?? '';
  const notHtml = (head: Buffer) => {
    if (!resumed && !opts.allowHtml && (type.includes('text/html') || looksLikeHtml(head))) {
      throw new DownloadError(
        `${url}: got an HTML page instead of the file (Google Drive's quota or virus-scan page, or a login page); set data.mirror to a mirror that serves the files directly`,
        url,
      );
    }
  };
  const length = Number(res.header('content-length'));
  if (!resumed && length > 0 && length <= SMALL) {
    // A small file (a thumbnail, a label file): one buffer, verified in memory and written once
    // (by fetchFile) beats a stream per file.
    const data = Buffer.from(await res.body.arrayBuffer());
    notHtml(data);
    opts.onBytes?.(data.length);
    return { transferred: data.length, resumed, data };
  }
  const body = res.body;
  let transferred = 0;
  let first = true;
  body.on('data', (chunk: Buffer) => {
    if (first) {
      first = false;
      try {
        notHtml(chunk);
      } catch (e) {
        body.destroy(e as Error);
        return;
      }
    }
    transferred += chunk.length;
    opts.onBytes?.(chunk.length);
  });
  // 200 to a Range request: the server ignores ranges, so start the part over.
  const out = createWriteStream(part, { flags: resumed ? 'a' : 'w' });
  try {
    await pipeline(body, out);
  } catch (e) {
    // Settle the part file before reporting: a rerun (or the caller) reads its length next.
    if (!out.closed) await once(out, 'close');
    throw e;
  }
  return { transferred, resumed };
}

/** Download `url` to `dest`, resuming, retrying and verifying; `dest` appears only when verified. */
export async function fetchFile(url: string, dest: string, opts: FetchOptions = {}): Promise<FetchResult> {
  const attempts = opts.attempts ?? 4;
  const part = `${dest}.part`;
  if (!opts.dirExists) mkdirSync(path.dirname(dest), { recursive: true });
  let transferred = 0;
  let resumed = false;
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    if (i > 0) {
      const retryAfter = (lastError as { retryAfterMs?: number })?.retryAfterMs;
      await sleep(retryAfter ?? (opts.backoffMs ?? 200) * 2 ** (i - 1), opts.signal);
    }
    let data: Buffer | undefined;
    try {
      const r = await attempt(url, part, opts, i === 0);
      transferred += r.transferred;
      resumed ||= r.resumed;
      data = r.data;
    } catch (e) {
      if (opts.signal?.aborted) throw e; // keep the part: the next run resumes it
      if (e instanceof DownloadError && !e.retryable) {
        rmSync(part, { force: true });
        throw e;
      }
      lastError = e;
      continue; // connection reset, 5xx, 429: resume on the next attempt
    }
    const bytes = data ? data.length : (await stat(part)).size;
    const md5 = opts.md5 ? (data ? createHash('md5').update(data).digest('hex') : await md5Of(part)) : undefined;
    if ((opts.size !== undefined && bytes !== opts.size) || (opts.md5 && md5 !== opts.md5)) {
      lastError = new DownloadError(
        `${url}: ${opts.size !== undefined && bytes !== opts.size ? `${bytes} bytes, expected ${opts.size}` : `md5 ${md5}, expected ${opts.md5}`}`,
        url,
        true,
      );
      rmSync(part, { force: true }); // a wrong file cannot be resumed into a right one
      continue;
    }
    if (data) {
      // Verified in memory; written through the part file so that dest, if it exists, is whole.
      // Synchronous on purpose: for a small file, four syscalls here cost ~20 µs, where the same as
      // promises cost ~100 µs of event-loop and thread-pool work (bench/download.ts; on this VM's
      // disk too, where the thread pool's parallel creates only contend in the journal).
      try {
        writeFileSync(part, data);
        renameSync(part, dest);
      } catch (e) {
        rmSync(part, { force: true }); // disk full, say: no half-written part is left behind
        throw e;
      }
    } else await rename(part, dest);
    return { bytes, transferred, md5, resumed };
  }
  throw new DownloadError(
    `${path.basename(dest)} failed after ${attempts} attempts: ${(lastError as Error)?.message ?? lastError}`,
    url,
  );
}
