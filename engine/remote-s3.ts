// A remote in an S3 bucket (AWS, or anything speaking S3: MinIO, R2, Ceph, s3rver). Objects live under
// the URL's prefix with the local cache's layout. S3 itself gives the `put` guarantee: an object, single
// PUT or multipart, is visible only once complete, so an interrupted push leaves nothing under the key.
//
// Credentials never come from the project config (it is committed): the SDK's default chain finds them
// (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, SSO, instance roles).

import { createReadStream, createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import pLimit from 'p-limit';
import { PipelineError } from './failure.ts';
import type { Remote, RemoteConfig, RemoteObject } from './remote.ts';

export interface S3RemoteOptions {
  /** ListObjectsV2 page size; S3's maximum is the default. Smaller only to exercise paging in tests. */
  pageSize?: number;
}

/** What the SDK throws: service errors carry a name and an HTTP status, network errors a Node `code`. */
interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  errors?: SdkError[];
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
]);
const AUTH_NAMES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'Forbidden',
  'ExpiredToken',
  'InvalidToken',
]);

export class S3Remote implements Remote {
  readonly where: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  /** '' or 'team/cache/': prepended to every key. */
  private readonly prefix: string;
  private readonly pageSize: number;
  /** Whether the bucket's existence was confirmed: HEAD on a missing bucket looks like a missing key. */
  private bucketChecked = false;

  constructor(
    readonly name: string,
    rc: RemoteConfig,
    opts: S3RemoteOptions = {},
  ) {
    const url = URL.canParse(rc.url) ? new URL(rc.url) : undefined;
    if (url?.protocol !== 's3:' || !url.hostname) {
      throw new PipelineError({
        reason: 'invalid-definition',
        message: `remote '${name}': '${rc.url}' is not an S3 URL; write it as s3://bucket or s3://bucket/prefix`,
      });
    }
    if (rc.endpoint !== undefined && !URL.canParse(rc.endpoint)) {
      throw new PipelineError({
        reason: 'invalid-definition',
        message: `remote '${name}': endpoint '${rc.endpoint}' is not a URL; write it like http://127.0.0.1:9000`,
      });
    }
    this.bucket = url.hostname;
    const prefix = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
    this.prefix = prefix ? `${prefix}/` : '';
    this.pageSize = opts.pageSize ?? 1000;
    const region = rc.region ?? process.env.AWS_REGION ?? 'us-east-1';
    this.where = `s3://${this.bucket}${prefix ? `/${prefix}` : ''} ${rc.endpoint ? `at ${rc.endpoint}` : `in ${region}`}`;
    // The SDK warns on every command that it will need Node 22 from 2027; Node 20 is supported here.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.client = new S3Client({
      region,
      endpoint: rc.endpoint,
      forcePathStyle: rc.path_style ?? false,
      // Few retries and a connect timeout: an unreachable remote should fail in seconds, not minutes.
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 3000 },
      // Since early 2025 the SDK adds CRC checksums to every upload and validates them on download; several
      // S3-compatible servers (older MinIO, Ceph, GCS's XML API) reject or lack them. Send and check them
      // only where S3 demands it; AWS is fine with that.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async has(keys: string[]): Promise<Set<string>> {
    const limit = pLimit(16);
    const present = new Set<string>();
    let missing: string | undefined;
    await Promise.all(
      keys.map((key) =>
        limit(async () => {
          try {
            await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
            present.add(key);
          } catch (e) {
            if (status(e) !== 404) {
              // One failure fails the call: don't keep probing a dead endpoint for the remaining keys.
              limit.clearQueue();
              throw this.explain(e, `checking ${key}`);
            }
            missing ??= key;
          }
        }),
      ),
    );
    if (missing !== undefined && !this.bucketChecked) await this.checkBucket(missing);
    return present;
  }

  /**
   * HEAD responses have no body, so a 404 can't say whether the key or the bucket is missing; GET can.
   * It also catches an endpoint that is no S3 server at all (a web server answering 404 to everything).
   */
  private async checkBucket(missingKey: string): Promise<void> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + missingKey, Range: 'bytes=0-0' }),
      );
      (res.Body as Readable | undefined)?.destroy();
    } catch (e) {
      const name = (e as SdkError).name;
      // 416: the key appeared meanwhile, empty. Either way the bucket is there.
      if (name !== 'NoSuchKey' && status(e) !== 416) {
        if (status(e) === 404 && name !== 'NoSuchBucket') {
          throw this.fail(
            'answers 404 without an S3 error code: is the endpoint an S3 server, and is path_style right for it?',
          );
        }
        throw this.explain(e, 'checking the bucket');
      }
    }
    this.bucketChecked = true;
  }

  async put(key: string, file: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const body = createReadStream(file);
    // Parts are buffered in memory (queueSize × partSize = 4 × 5 MiB at a time); above one part it is a
    // multipart upload, which S3 makes visible only at CompleteMultipartUpload.
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.prefix + key, Body: body },
    });
    const onAbort = () => void upload.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } catch (e) {
      // On abort, lib-storage lets in-flight parts finish, then aborts the multipart upload by itself. A
      // single PUT already sent is not cancelled and may still land: complete, so that is harmless.
      if (signal?.aborted) throw signal.reason;
      throw this.explain(e, `uploading ${key}`);
    } finally {
      signal?.removeEventListener('abort', onAbort);
      body.destroy();
    }
  }

  async get(key: string, dest: string, signal?: AbortSignal): Promise<void> {
    let res: GetObjectCommandOutput;
    try {
      res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }), {
        abortSignal: signal,
      });
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if ((e as SdkError).name === 'NoSuchKey') throw new Error(`remote '${this.name}' has no ${key}`);
      throw this.explain(e, `downloading ${key}`);
    }
    try {
      await pipeline(res.Body as Readable, createWriteStream(dest), { signal });
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      throw this.explain(e, `downloading ${key}`);
    }
  }

  async *list(prefix: string): AsyncIterable<RemoteObject> {
    // A folder, as for the folder remote: 'objects' must not also match 'objects-old/…'.
    const sub = prefix.replace(/^\/+|\/+$/g, '');
    const full = this.prefix + (sub ? `${sub}/` : '');
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: full,
            ContinuationToken: token,
            MaxKeys: this.pageSize,
          }),
        );
      } catch (e) {
        throw this.explain(e, `listing ${sub || 'keys'}`);
      }
      for (const o of page.Contents ?? []) {
        // Zero-byte "folder" markers that consoles create are not cache keys.
        if (!o.Key || o.Key.endsWith('/')) continue;
        yield { key: o.Key.slice(this.prefix.length), size: o.Size ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  private fail(message: string): PipelineError {
    return new PipelineError({
      reason: 'remote',
      message: `remote '${this.name}' (${this.where}) ${message}`,
    });
  }

  /** Turns the failures a user can fix (endpoint, credentials, bucket) into a message saying how. */
  private explain(e: unknown, doing: string): unknown {
    const err = e as SdkError;
    // Node wraps a failed connect to a name with several addresses in an AggregateError.
    const code = [err.code, ...(err.errors ?? []).map((x) => x.code)].find((c) => c && NETWORK_CODES.has(c));
    if (code || err.name === 'TimeoutError') {
      return this.fail(
        `is unreachable while ${doing}: ${code ?? err.message}. ` +
          'Check the endpoint in .pipeline/config.yaml and your network.',
      );
    }
    if (err.name === 'NoSuchBucket') {
      return this.fail(
        `has no bucket '${this.bucket}' (${doing}). Create it, or fix the bucket in the remote's URL ` +
          '(and with a custom endpoint, check path_style).',
      );
    }
    if (err.name === 'CredentialsProviderError') {
      return this.fail(
        `has no credentials to use (${doing}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE ` +
          'for a profile in ~/.aws. They never go in .pipeline/config.yaml.',
      );
    }
    if ((err.name && AUTH_NAMES.has(err.name)) || status(e) === 401 || status(e) === 403) {
      // HEAD responses have no body, so the SDK can only name them 'Unknown' (or 'Forbidden').
      const what = err.name && err.name !== 'Unknown' ? err.name : `HTTP ${status(e)}`;
      return this.fail(
        `rejected the credentials while ${doing}: ${what}. Check AWS_ACCESS_KEY_ID and ` +
          "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and that they may read, write and list the bucket's keys.",
      );
    }
    return e;
  }
}

const status = (e: unknown) => (e as SdkError).$metadata?.httpStatusCode;
