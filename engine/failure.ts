// Expected failures are values, each with a kebab-case `reason` and the data needed to explain it.
// `PipelineError` carries one through a throw, so deep code can stop the command with a clear message;
// the CLI is the only place that turns it into text and an exit code.

export type DefinitionFailure =
  | { reason: 'cycle'; cycle: string[] }
  | { reason: 'duplicate-out'; path: string; stages: string[] }
  | { reason: 'missing-dep'; stage: string; path: string }
  | { reason: 'out-outside-project'; stage: string; path: string }
  | { reason: 'unknown-stage'; name: string; suggestion?: string }
  | { reason: 'unknown-config-key'; key: string; where: string; suggestion?: string }
  | { reason: 'bad-set'; arg: string; message: string }
  | { reason: 'yaml'; file: string; line?: number; column?: number; message: string }
  | { reason: 'missing-config'; name: string; available: string[] }
  | { reason: 'invalid-definition'; message: string };

export type StageFailure =
  | { reason: 'exit-non-zero'; stage: string; code: number; stderr: string }
  | { reason: 'killed'; stage: string; signal: string }
  | { reason: 'threw'; stage: string; message: string; stack?: string }
  | { reason: 'missing-out'; stage: string; paths: string[] }
  | { reason: 'aborted'; stage: string };

/** A remote that cannot be reached, refuses the credentials, or lacks its bucket: exit 1, not 2. */
export type RemoteFailure = { reason: 'remote'; message: string };

export type Failure = DefinitionFailure | StageFailure | RemoteFailure | { reason: 'locked'; pid?: number };

export class PipelineError extends Error {
  constructor(readonly failure: Failure) {
    super(describeFailure(failure));
    this.name = 'PipelineError';
  }
}

const suggest = (s?: string) => (s ? ` Did you mean '${s}'?` : '');

/** One formatter per reason: a missing case is a compile error. */
const describers: { [R in Failure['reason']]: (f: Extract<Failure, { reason: R }>) => string } = {
  cycle: (f) => `the pipeline has a cycle: ${f.cycle.join(' -> ')}. Remove one of these deps.`,
  'duplicate-out': (f) =>
    `'${f.path}' is an out of more than one stage (${f.stages.join(', ')}): each path must have one producer.`,
  'missing-dep': (f) =>
    `stage '${f.stage}' depends on '${f.path}', which does not exist and which no stage makes. ` +
    `Create it, fix the path, or add a stage that has it in its outs.`,
  'out-outside-project': (f) =>
    `stage '${f.stage}' declares out '${f.path}', which is outside the project: outs must be inside the project root.`,
  'unknown-stage': (f) => `no stage is named '${f.name}'.${suggest(f.suggestion)} See \`pipeline dag\`.`,
  'unknown-config-key': (f) => `unknown config key '${f.key}' (${f.where}).${suggest(f.suggestion)}`,
  'bad-set': (f) => `malformed --set '${f.arg}': ${f.message}. Use --set key.path=value (the value is YAML).`,
  yaml: (f) =>
    `malformed YAML in ${f.file}${f.line !== undefined ? `:${f.line}${f.column !== undefined ? `:${f.column}` : ''}` : ''}: ${f.message}`,
  'missing-config': (f) =>
    `no config named '${f.name}' (looked for configs/${f.name}.yaml). Available: ${f.available.join(', ') || 'none'}.`,
  'invalid-definition': (f) => f.message,
  'exit-non-zero': (f) => `stage '${f.stage}' exited with code ${f.code}${f.stderr ? `:\n${f.stderr}` : ''}`,
  killed: (f) => `stage '${f.stage}' was killed by ${f.signal}`,
  threw: (f) => `stage '${f.stage}' threw: ${f.message}`,
  'missing-out': (f) => `stage '${f.stage}' finished but did not write its declared out(s): ${f.paths.join(', ')}`,
  aborted: (f) => `stage '${f.stage}' was interrupted; nothing was recorded for it`,
  remote: (f) => f.message,
  locked: (f) =>
    `another run${f.pid ? ` (pid ${f.pid})` : ''} holds this workspace; rerun without --no-wait to wait for it`,
};

export function describeFailure(f: Failure): string {
  return (describers[f.reason] as (f: Failure) => string)(f);
}

export const isDefinitionFailure = (f: Failure): f is DefinitionFailure =>
  !['exit-non-zero', 'killed', 'threw', 'missing-out', 'aborted', 'locked', 'remote'].includes(f.reason);
