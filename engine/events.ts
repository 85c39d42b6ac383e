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

/** A stage's last result while watching; `cancelled`: stopped because its inputs changed mid-run. */
export type WatchOutcome = StageOutcome | 'cancelled';

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
  | { type: 'run-summary'; stages: StageSummary[]; seconds: number; interrupted: boolean; io: HashStats }
  /** `watch`: a burst of changes settled (or, for cycle 1, watching began) and a run follows. */
  | {
      type: 'watch-cycle';
      cycle: number;
      /** The first few changed paths; `count` is how many there were. */
      changes: Array<{ path: string; change: 'added' | 'modified' | 'removed' }>;
      count: number;
      /** pipeline.ts or a module it imports changed: the definition is read again first. */
      reload: boolean;
    }
  | { type: 'watch-reload'; file: string; stages: string[] }
  /** Inputs of running stages changed: the run is stopped (nothing recorded) and starts again. */
  | { type: 'watch-cancel'; stages: string[]; paths: string[] }
  /** The definition or config cannot be used as it is; watching goes on until it is fixed. */
  | { type: 'watch-error'; message: string; failure?: Failure }
  | {
      type: 'watch-idle';
      /** Paths watched (a folder counts once). */
      watching: number;
      stages: Array<{ name: string; outcome: WatchOutcome; seconds: number }>;
    }
  | { type: 'watch-stop'; cycles: number; ran: number; failed: number; cancelled: number; seconds: number };

export type Logger = (event: Event) => void;
