// Everything the engine says is an Event handed to a Logger; only renderers (render-*.ts) print.

import type { Failure } from './failure.ts';
import type { HashStats } from './hashing.ts';
import type { Reason } from './status.ts';
import type { ProgressUpdate } from './types.ts';

export type StageOutcome = 'ran' | 'restored' | 'fresh' | 'failed' | 'skipped';

export interface StageSummary {
  name: string;
  outcome: StageOutcome;
  seconds: number;
  reasons: Reason[];
}

export type Event =
  | { type: 'run-waiting'; pid?: number }
  | { type: 'run-plan'; stages: Array<{ name: string; reasons: Reason[]; restorable: boolean }> }
  | { type: 'stage-start'; stage: string; reasons: Reason[] }
  | { type: 'stage-fresh'; stage: string }
  | { type: 'stage-progress'; stage: string; progress: ProgressUpdate }
  | { type: 'stage-output'; stage: string; stream: 'stdout' | 'stderr' | 'log' | 'warn'; line: string }
  | { type: 'stage-success'; stage: string; seconds: number }
  /** Outs restored from the run-cache instead of running the stage. */
  | { type: 'stage-restored'; stage: string; seconds: number; from: 'cache' | 'remote'; link: string }
  | {
      type: 'transfer-progress';
      direction: 'push' | 'pull';
      remote: string;
      done: number;
      total: number;
      bytes: number;
      totalBytes?: number;
    }
  | { type: 'warning'; message: string }
  | { type: 'stage-failure'; stage: string; seconds: number; failure: Failure }
  | { type: 'stage-skipped'; stage: string; because: string }
  | { type: 'recovered'; stage: string; paths: string[] }
  | { type: 'interrupt'; signal: string }
  | { type: 'run-summary'; stages: StageSummary[]; seconds: number; interrupted: boolean; io: HashStats };

export type Logger = (event: Event) => void;
