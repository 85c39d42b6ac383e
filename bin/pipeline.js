#!/usr/bin/env node
// `npx pipeline <cmd>`: finds pipeline.ts in this folder or the nearest one above it (as git finds its
// root), or takes --file F, loads it through tsx and runs the CLI on it.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { register } from 'tsx/esm/api';

register();
const argv = process.argv.slice(2);
let file;
const at = argv.indexOf('--file');
if (at >= 0) {
  file = argv[at + 1];
  argv.splice(at, 2);
} else {
  for (let dir = process.cwd(); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'pipeline.ts'))) {
      file = path.join(dir, 'pipeline.ts');
      break;
    }
    if (path.dirname(dir) === dir) break;
  }
}
const { runFile } = await import('../engine/cli.ts');
await runFile(file ?? 'pipeline.ts', argv);
