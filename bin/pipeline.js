#!/usr/bin/env node
// `npx pipeline <cmd>`: loads ./pipeline.ts (or --file F) through tsx and runs the CLI on it.
import { register } from 'tsx/esm/api';

register();
const argv = process.argv.slice(2);
let file = 'pipeline.ts';
const at = argv.indexOf('--file');
if (at >= 0) {
  file = argv[at + 1];
  argv.splice(at, 2);
}
const { runFile } = await import('../engine/cli.ts');
await runFile(file, argv);
