// The S3 remote against a real S3 server: s3rver, run as a child process on a loopback port. Round
// trips (small, and multipart), paged listing, an aborted upload, the failures a user has to fix
// themselves (endpoint down or not S3, credentials, bucket), and `openRemote` from the project config.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { PipelineError } from '../engine/failure.ts';
import { openRemote, type RemoteConfig, writeProjectConfig } from '../engine/remote.ts';
import { S3Remote } from '../engine/remote-s3.ts';
import { chainProject } from './rig.ts';

const BUCKET = 'pipeline-test';
const tmp = mkdtempSync(path.join(tmpdir(), 'pipeline-s3-'));
const dataDir = path.join(tmp, 's3rver');
const work = path.join(tmp, 'work');

// s3rver accepts only this key pair. Nothing else from the environment may leak into the SDK's chain.
process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
delete process.env.AWS_SESSION_TOKEN;
delete process.env.AWS_PROFILE;

let server: ChildProcess | undefined;
let endpoint = '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const remote = (url: string, extra: Partial<RemoteConfig> = {}, pageSize?: number) =>
  new S3Remote('team', { url, endpoint, path_style: true, ...extra }, { pageSize });
const file = (name: string, content: Buffer | string) => {
  const f = path.join(work, name);
  writeFileSync(f, content);
  return f;
};
const collect = async <T>(it: AsyncIterable<T>) => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};

/** A port nothing listens on: bind an ephemeral one, then let it go. */
const closedPort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** Starts s3rver on port 0 (no race for a free port) and reads the port it chose from its banner. */
async function startServer(): Promise<void> {
  // --openssl-legacy-provider: s3rver encrypts continuation tokens with an algorithm Node 17+ hides.
  const child = spawn(
    process.execPath,
    [
      '--openssl-legacy-provider',
      createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js'),
      ...['-d', dataDir, '-a', '127.0.0.1', '-p', '0', '--silent'],
      ...['--allow-mismatched-signatures', '--no-vhost-buckets', '--configure-bucket', BUCKET],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  server = child;
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s3rver did not start:\n${output}`)), 10_000);
    const onData = (d: Buffer) => {
      output += d;
      const m = /listening on [\d.]+:(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => reject(new Error(`s3rver exited (${code}):\n${output}`)));
  });
  endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      await fetch(`${endpoint}/`);
      return;
    } catch (e) {
      if (i === 50) throw e;
      await sleep(100);
    }
  }
}

describe('S3 remote (s3rver)', () => {
  before(async () => {
    mkdirSync(work);
    await startServer();
  });

  after(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server?.once('exit', r));
      server.kill();
      await exited;
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  test('put, has and get round-trip under a prefix; has reports exactly the present keys', async () => {
    const r = remote(`s3://${BUCKET}/team/cache`);
    assert.equal(r.where, `s3://${BUCKET}/team/cache at ${endpoint}`);
    const src = file('small.txt', 'hello, remote\n');
    await r.put('objects/ab/cdef', src);
    await r.put('runs/train/fp.json', file('run.json', '{"outs":[]}'));

    const asked = ['objects/ab/cdef', 'objects/zz/none', 'runs/train/fp.json', 'dirs/nope.json'];
    assert.deepEqual([...(await r.has(asked))].sort(), ['objects/ab/cdef', 'runs/train/fp.json']);
    assert.deepEqual(await r.has([]), new Set());

    // Stored under the prefix, seen from the bucket's root.
    const root = remote(`s3://${BUCKET}`);
    assert.deepEqual(
      await root.has(['team/cache/objects/ab/cdef', 'objects/ab/cdef']),
      new Set(['team/cache/objects/ab/cdef']),
    );

    const dest = path.join(work, 'small.back');
    await r.get('objects/ab/cdef', dest);
    assert.equal(readFileSync(dest, 'utf8'), 'hello, remote\n');
    await assert.rejects(r.get('objects/zz/none', path.join(work, 'none')), /remote 'team' has no objects\/zz\/none/);
  });

  test('a 12 MiB file goes up as a multipart upload and comes back byte-identical', async () => {
    const r = remote(`s3://${BUCKET}/big`);
    const src = file('big.bin', randomBytes(12 * 1024 * 1024 + 13));
    await r.put('objects/12/big', src);
    const dest = path.join(work, 'big.back');
    await r.get('objects/12/big', dest);
    assert.equal(sha256(dest), sha256(src));
    await assert.rejects(r.get('objects/12/big', path.join(work, 'x'), AbortSignal.abort()), { name: 'AbortError' });
    assert.deepEqual(await collect(r.list('objects')), [{ key: 'objects/12/big', size: 12 * 1024 * 1024 + 13 }]);
  });

  test('list pages through ListObjectsV2 and stays inside the folder it was given', async () => {
    const r = remote(`s3://${BUCKET}/listing`, {}, 7);
    const src = file('k.txt', 'k');
    const keys = Array.from({ length: 30 }, (_, i) => `objects/${String(i % 4).padStart(2, '0')}/k${i}`);
    // Not 'objects-old/…': s3rver lists in directory-walk order ('objects/' before 'objects-old/'), not
    // S3's byte order, and its paging then skips what sorts before the last key. Hash keys never hit that.
    await Promise.all([...keys, 'objectsold/x', 'dirs/d.json'].map((k) => r.put(k, src)));

    // The server really pages at 7, so the remote has to follow continuation tokens to see all 30.
    const client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true });
    const first = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'listing/', MaxKeys: 7 }));
    assert.equal(first.Contents?.length, 7);
    assert.equal(first.IsTruncated, true);
    client.destroy();

    const listed = await collect(r.list('objects'));
    assert.deepEqual(listed.map((o) => o.key).sort(), [...keys].sort());
    assert.ok(listed.every((o) => o.size === 1));
    assert.deepEqual(await collect(r.list('objects/')), listed);
    assert.equal((await collect(r.list(''))).length, 32);
  });

  test('an aborted upload leaves nothing under its key', async () => {
    const r = remote(`s3://${BUCKET}/aborted`);
    const src = file('huge.bin', randomBytes(64 * 1024 * 1024));
    const ac = new AbortController();
    const pushing = r.put('objects/ab/huge', src, ac.signal);
    // Abort once the server holds a first part: mid-upload, not before it started.
    const uploads = path.join(dataDir, BUCKET);
    const partLanded = () =>
      readdirSync(uploads, { recursive: true, encoding: 'utf8' }).some((p) => /_S3rver_uploads.*\.md5$/.test(p));
    for (let t = Date.now(); !partLanded(); await sleep(10)) {
      assert.ok(Date.now() - t < 15_000, 'no part reached the server');
    }
    ac.abort();
    await assert.rejects(pushing, { name: 'AbortError' });
    assert.deepEqual(await r.has(['objects/ab/huge']), new Set());
    // Parts still in flight when it was aborted finish, but nothing completes the upload.
    await sleep(500);
    assert.deepEqual(await r.has(['objects/ab/huge']), new Set());
    assert.deepEqual(await collect(r.list('objects')), []);
    // An already aborted signal does not start anything.
    await assert.rejects(r.put('objects/ab/other', file('o.txt', 'o'), AbortSignal.abort()), { name: 'AbortError' });
    assert.deepEqual(await r.has(['objects/ab/other']), new Set());
  });

  test('an unreachable endpoint fails within seconds, naming the remote', async () => {
    const port = await closedPort();
    const r = remote(`s3://${BUCKET}/x`, { endpoint: `http://127.0.0.1:${port}` });
    const t0 = Date.now();
    await assert.rejects(r.has(['objects/ab/cd']), (e: unknown) => {
      assert.ok(e instanceof PipelineError, String(e));
      assert.match(e.message, new RegExp(`remote 'team' \\(s3://${BUCKET}/x at http://127\\.0\\.0\\.1:${port}\\)`));
      assert.match(e.message, /unreachable/);
      assert.match(e.message, /ECONNREFUSED/);
      return true;
    });
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
  });

  test('an endpoint that is not an S3 server is called out, not read as "no keys"', async () => {
    const web = createHttpServer((_req, res) => res.writeHead(404).end('not here'));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    try {
      const { port } = web.address() as { port: number };
      const r = remote(`s3://${BUCKET}/x`, { endpoint: `http://127.0.0.1:${port}` });
      await assert.rejects(r.has(['objects/ab/cd']), (e: unknown) => {
        assert.ok(e instanceof PipelineError, String(e));
        assert.match(e.message, /^remote 'team' .* answers 404 without an S3 error code: is the endpoint an S3 server/);
        return true;
      });
    } finally {
      web.closeAllConnections();
      await new Promise((r) => web.close(r));
    }
  });

  test('wrong or missing credentials are reported as such', async () => {
    const names = [
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
      'AWS_SHARED_CREDENTIALS_FILE',
      'AWS_CONFIG_FILE',
      'AWS_EC2_METADATA_DISABLED',
    ];
    const saved = new Map(names.map((n) => [n, process.env[n]]));
    process.env.AWS_ACCESS_KEY_ID = 'NOT-S3RVER';
    process.env.AWS_SECRET_ACCESS_KEY = 'wrong';
    try {
      const r = remote(`s3://${BUCKET}/team/cache`);
      const credentialError = (e: unknown) => {
        assert.ok(e instanceof PipelineError, String(e));
        assert.match(e.message, /^remote 'team' \(s3:\/\/pipeline-test\/team\/cache at /);
        assert.match(e.message, /credentials/);
        assert.match(e.message, /AWS_ACCESS_KEY_ID/);
        return true;
      };
      await assert.rejects(r.has(['objects/ab/cdef']), credentialError);
      await assert.rejects(r.put('objects/ab/new', file('c.txt', 'c')), credentialError);
      await assert.rejects(collect(r.list('objects')), credentialError);

      // None at all: the SDK's chain comes up empty (no ~/.aws files, no instance metadata to ask).
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      process.env.AWS_SHARED_CREDENTIALS_FILE = process.env.AWS_CONFIG_FILE = path.join(tmp, 'no-such-file');
      process.env.AWS_EC2_METADATA_DISABLED = 'true';
      await assert.rejects(remote(`s3://${BUCKET}/team/cache`).has(['objects/ab/cdef']), (e: unknown) => {
        assert.ok(e instanceof PipelineError, String(e));
        assert.match(e.message, /^remote 'team' .* has no credentials .*AWS_ACCESS_KEY_ID/);
        return true;
      });
    } finally {
      for (const [n, v] of saved) {
        if (v === undefined) delete process.env[n];
        else process.env[n] = v;
      }
    }
  });

  test('a missing bucket is named, not mistaken for missing keys', async () => {
    const r = remote('s3://no-such-bucket/p');
    const bucketError = (e: unknown) => {
      assert.ok(e instanceof PipelineError, String(e));
      assert.match(e.message, /remote 'team' .* has no bucket 'no-such-bucket'/);
      return true;
    };
    await assert.rejects(r.has(['objects/ab/cd']), bucketError);
    await assert.rejects(r.put('objects/ab/cd', file('b.txt', 'b')), bucketError);
    await assert.rejects(collect(r.list('objects')), bucketError);
  });

  test('openRemote builds a working S3 remote from .pipeline/config.yaml', async () => {
    const root = path.join(tmp, 'project');
    writeProjectConfig(root, { remotes: { s3: { url: `s3://${BUCKET}/x`, endpoint, path_style: true } } });
    assert.ok(existsSync(path.join(root, '.pipeline', 'config.yaml')));
    const r = await openRemote(root, 's3');
    assert.ok(r instanceof S3Remote);
    assert.equal(r.name, 's3');
    await r.put('objects/cf/g', file('cfg.txt', 'from config'));
    assert.deepEqual(await r.has(['objects/cf/g', 'objects/cf/h']), new Set(['objects/cf/g']));
    assert.deepEqual(await collect(r.list('objects')), [{ key: 'objects/cf/g', size: 11 }]);
  });

  test('end to end through the CLI: run --push here, run --pull in a second copy restores everything', async () => {
    const a = chainProject();
    const b = chainProject();
    try {
      for (const p of [a, b]) {
        const add = await p.cli('remote', 'add', 'team', `s3://${BUCKET}/e2e`, '--endpoint', endpoint, '--path-style');
        assert.equal(add.exitCode, 0, add.stderr);
      }
      const pushed = await a.cli('run', '--push');
      assert.equal(pushed.exitCode, 0, pushed.stdout + pushed.stderr);
      assert.deepEqual(a.runs(), ['evaluate', 'prepare', 'train']);
      assert.match((await a.cli('status', '--remote')).stdout, /train: 1\/1 objects local, 1\/1 on 'team': in sync/);

      const pulled = await b.cli('run', '--pull');
      assert.equal(pulled.exitCode, 0, pulled.stdout + pulled.stderr);
      assert.match(pulled.stdout, /0 ran, 3 restored/);
      assert.deepEqual(b.runs(), [], 'nothing recomputed');
      assert.equal(b.read('artifacts/model.txt'), a.read('artifacts/model.txt'));

      // `pull` after losing the outs and the local cache: fetched again and checked out.
      rmSync(b.path('artifacts'), { recursive: true });
      rmSync(b.path('.pipeline/cache'), { recursive: true });
      const pull = await b.cli('pull');
      assert.equal(pull.exitCode, 0, pull.stdout + pull.stderr);
      assert.match(pull.stdout, /checkout: 3 restored/);
    } finally {
      a.remove();
      b.remove();
    }
  });
});
