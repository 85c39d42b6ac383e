// The downloader against a real HTTP server on 127.0.0.1 that injects every fault the issue lists.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DownloadError, fetchFile } from '../stages/download/fetch-file.ts';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const file = (n: number, size: number) => {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + n) % 251;
  return b;
};
const PNG = file(1, 1024 * 1024); // above the in-memory threshold: streamed, so resumable
const SMALL_PNG = file(3, 20 * 1024);
const BIG = file(2, 4 * 1024 * 1024);

/** What the server saw, per path: the Range headers of each request and the bytes it sent. */
const seen = new Map<string, { ranges: Array<string | undefined>; sent: number }>();
const count = new Map<string, number>();

function serve(
  res: ServerResponse,
  req: IncomingMessage,
  body: Buffer,
  opts: { ranges?: boolean; type?: string } = {},
) {
  const range = /bytes=(\d+)-/.exec(req.headers.range ?? '');
  const from = range && opts.ranges !== false ? Number(range[1]) : 0;
  const log = seen.get(req.url as string) as { sent: number };
  if (from > 0) {
    res.writeHead(206, {
      'content-length': body.length - from,
      'content-range': `bytes ${from}-${body.length - 1}/${body.length}`,
      'content-type': opts.type ?? 'image/png',
    });
  } else res.writeHead(200, { 'content-length': body.length, 'content-type': opts.type ?? 'image/png' });
  log.sent += body.length - from;
  res.end(body.subarray(from));
}

function handler(req: IncomingMessage, res: ServerResponse) {
  const url = req.url as string;
  const n = (count.get(url) ?? 0) + 1;
  count.set(url, n);
  const log = seen.get(url) ?? { ranges: [], sent: 0 };
  log.ranges.push(req.headers.range);
  seen.set(url, log);
  if (url === '/ok.png') return serve(res, req, PNG);
  if (url === '/small.png') return serve(res, req, SMALL_PNG);
  if (url === '/reset.png') {
    if (n === 1) {
      // Promise the whole file, send a third of it, then drop the connection.
      res.writeHead(200, { 'content-length': PNG.length, 'content-type': 'image/png' });
      res.write(PNG.subarray(0, 20_000));
      log.sent += 20_000;
      setTimeout(() => res.socket?.destroy(), 50);
      return;
    }
    return serve(res, req, PNG);
  }
  if (url === '/flaky-md5.png') return serve(res, req, n === 1 ? file(9, PNG.length) : PNG);
  if (url === '/bad-md5.png') return serve(res, req, file(9, PNG.length));
  if (url === '/missing.png') return res.writeHead(404).end('no');
  if (url === '/forbidden.png') return res.writeHead(403).end('no');
  if (url === '/busy.png') {
    if (n === 1) return res.writeHead(429, { 'retry-after': '1' }).end();
    if (n === 2) return res.writeHead(503).end();
    return serve(res, req, PNG);
  }
  if (url === '/quota.png') {
    return serve(res, req, Buffer.from('<!DOCTYPE html><html><title>Google Drive - Quota exceeded</title></html>'), {
      type: 'text/html; charset=utf-8',
    });
  }
  if (url === '/norange.png') return serve(res, req, PNG, { ranges: false });
  if (url === '/big.bin') {
    // Slowly, so a client can be stopped halfway.
    const range = /bytes=(\d+)-/.exec(req.headers.range ?? '');
    const from = range ? Number(range[1]) : 0;
    res.writeHead(from ? 206 : 200, {
      'content-length': BIG.length - from,
      'content-type': 'application/octet-stream',
    });
    let at = from;
    const tick = setInterval(() => {
      if (res.destroyed) return clearInterval(tick);
      const chunk = BIG.subarray(at, Math.min(at + 256 * 1024, BIG.length));
      at += chunk.length;
      log.sent += chunk.length;
      if (at >= BIG.length) {
        clearInterval(tick);
        res.end(chunk);
      } else res.write(chunk);
    }, 20);
    return;
  }
  res.writeHead(500).end();
}

describe('fetchFile against a loopback server with injected faults', () => {
  let server: Server;
  let base = '';
  const dir = mkdtempSync(path.join(tmpdir(), 'pipeline-fetch-'));
  const dest = (name: string) => path.join(dir, name);
  const quick = { backoffMs: 20 };
  before(async () => {
    server = createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test('a small file is fetched in one piece and verified', async () => {
    const r = await fetchFile(`${base}/small.png`, dest('small.png'), {
      size: SMALL_PNG.length,
      md5: md5(SMALL_PNG),
      ...quick,
    });
    assert.equal(r.md5, md5(SMALL_PNG));
    assert.deepEqual(readFileSync(dest('small.png')), SMALL_PNG);
  });

  test('a plain download is verified (size + md5) and appears only whole', async () => {
    const r = await fetchFile(`${base}/ok.png`, dest('ok.png'), { size: PNG.length, md5: md5(PNG), ...quick });
    assert.equal(r.bytes, PNG.length);
    assert.equal(r.md5, md5(PNG));
    assert.deepEqual(readFileSync(dest('ok.png')), PNG);
    assert.ok(!existsSync(dest('ok.png.part')));
  });

  test('a connection reset mid-file is resumed with a Range request, not restarted', async () => {
    const r = await fetchFile(`${base}/reset.png`, dest('reset.png'), { size: PNG.length, md5: md5(PNG), ...quick });
    assert.deepEqual(readFileSync(dest('reset.png')), PNG);
    assert.deepEqual(seen.get('/reset.png')?.ranges, [undefined, 'bytes=20000-']);
    assert.equal(seen.get('/reset.png')?.sent, PNG.length, 'no byte sent twice');
    assert.ok(r.resumed);
  });

  test('a wrong md5 is retried; one that stays wrong fails naming the file', async () => {
    await fetchFile(`${base}/flaky-md5.png`, dest('flaky.png'), { md5: md5(PNG), ...quick });
    assert.deepEqual(readFileSync(dest('flaky.png')), PNG);
    await assert.rejects(
      fetchFile(`${base}/bad-md5.png`, dest('bad.png'), { md5: md5(PNG), attempts: 3, ...quick }),
      (e: Error) =>
        e instanceof DownloadError && /bad\.png failed after 3 attempts: .*md5 [0-9a-f]+, expected/.test(e.message),
    );
    assert.ok(!existsSync(dest('bad.png')) && !existsSync(dest('bad.png.part')), 'nothing wrong is left behind');
  });

  test('404 and 403 fail at once with what to do', async () => {
    await assert.rejects(
      fetchFile(`${base}/missing.png`, dest('m.png'), quick),
      /not found \(HTTP 404\); check data\.mirror/,
    );
    assert.equal(count.get('/missing.png'), 1, 'no retry');
    await assert.rejects(
      fetchFile(`${base}/forbidden.png`, dest('f.png'), quick),
      /access denied \(HTTP 403\).*quota.*data\.mirror/,
    );
  });

  test('429 (Retry-After) and 503 are retried', async () => {
    const t0 = Date.now();
    await fetchFile(`${base}/busy.png`, dest('busy.png'), { md5: md5(PNG), ...quick });
    assert.equal(count.get('/busy.png'), 3);
    assert.ok(Date.now() - t0 >= 1000, 'waited the Retry-After second');
  });

  test("an HTML page where an image was expected is called out (Drive's quota page)", async () => {
    await assert.rejects(
      fetchFile(`${base}/quota.png`, dest('q.png'), quick),
      /got an HTML page instead of the file \(Google Drive's quota or virus-scan page.*set data\.mirror/,
    );
    assert.ok(!existsSync(dest('q.png')));
  });

  test('a server that ignores Range: the part is started over, and the result is right', async () => {
    // Leave a partial file, as an interrupted run would.
    const part = dest('norange.png.part');
    (await import('node:fs')).writeFileSync(part, PNG.subarray(0, 1000));
    await fetchFile(`${base}/norange.png`, dest('norange.png'), { md5: md5(PNG), ...quick });
    assert.deepEqual(readFileSync(dest('norange.png')), PNG);
  });

  test('stopped halfway (Ctrl-C), the next run fetches only the rest', async () => {
    const controller = new AbortController();
    let got = 0;
    const p = fetchFile(`${base}/big.bin`, dest('big.bin'), {
      md5: md5(BIG),
      signal: controller.signal,
      onBytes: (n) => {
        got += n;
        if (got >= BIG.length / 2) controller.abort(new Error('interrupted'));
      },
      ...quick,
    });
    await assert.rejects(p, /interrupted|aborted/i);
    const kept = statSync(dest('big.bin.part')).size;
    // What was on disk when the signal fired (a chunk or two in flight are lost, not corrupted).
    assert.ok(kept >= BIG.length * 0.4 && kept < BIG.length, `partial file kept (${kept} bytes)`);
    const sentBefore = seen.get('/big.bin')?.sent ?? 0;
    const r = await fetchFile(`${base}/big.bin`, dest('big.bin'), { md5: md5(BIG), ...quick });
    assert.deepEqual(readFileSync(dest('big.bin')), BIG);
    assert.equal(r.transferred, BIG.length - kept, 'only the missing bytes crossed the network');
    assert.ok((seen.get('/big.bin')?.sent ?? 0) - sentBefore <= BIG.length * 0.55);
  });
});
