// `watch`: a real watcher in a child process (`--json`), real edits, and counting stages to prove what
// ran. Every wait is for an event the watcher prints, with a generous timeout; nothing is timed.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import type { Event } from '../engine/events.ts';
import { alive, chainProject, countingStage, ENGINE, Project, pipelineFile, sleep } from './rig.ts';

const WAIT_MS = 90_000;

/** `pipeline watch --json` in a child process, its events parsed as they arrive. */
class Watcher {
  readonly events: Event[] = [];
  private readonly child: ReturnType<Project['spawn']>;
  private stderr = '';
  private notify = () => {};

  constructor(p: Project, args: string[]) {
    this.child = p.spawn(['watch', '--json', ...args]);
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line));
      } catch {
        return; // not an event
      }
      this.notify();
    });
    this.child.stderr?.on('data', (d) => {
      this.stderr += String(d);
    });
  }

  /** Where the events after an action start: pass to `next`. */
  mark(): number {
    return this.events.length;
  }

  /** The first event at index >= `from` that matches; waits for it. */
  async next<T extends Event['type']>(
    from: number,
    type: T,
    pred: (e: Extract<Event, { type: T }>) => boolean = () => true,
  ): Promise<{ event: Extract<Event, { type: T }>; at: number }> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      for (let i = from; i < this.events.length; i++) {
        const e = this.events[i];
        if (e.type === type && pred(e as Extract<Event, { type: T }>))
          return { event: e as Extract<Event, { type: T }>, at: i };
      }
      if (Date.now() > deadline || this.child.exitCode !== null) {
        const recent = this.events.slice(-15).map((e) => JSON.stringify(e).slice(0, 300));
        assert.fail(`no '${type}' event came; last events:\n${recent.join('\n')}\nstderr:\n${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        this.notify = resolve;
        setTimeout(resolve, 500);
      });
    }
  }

  /** Wait for a cycle whose changes include `path` (or one matching it), then for the watcher to be idle. */
  async cycleFor(from: number, path: string | RegExp): Promise<{ cycle: number; idle: number }> {
    const hit = (p: string) => (typeof path === 'string' ? p === path : path.test(p));
    const cycle = await this.next(from, 'watch-cycle', (e) => e.changes.some((c) => hit(c.path)));
    const idle = await this.next(cycle.at, 'watch-idle');
    return { cycle: cycle.at, idle: idle.at };
  }

  /** Names of the stages that started between two event indices. */
  started(from: number, to = this.events.length): string[] {
    return this.events
      .slice(from, to)
      .flatMap((e) => (e.type === 'stage-start' ? [e.stage] : []))
      .sort();
  }

  async stop(): Promise<{ exitCode: number; stdout: string }> {
    this.child.kill('SIGINT');
    const r = await this.child;
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout) };
  }
}

describe('watch: a chain of stages', () => {
  let p: Project;
  let w: Watcher;
  before(async () => {
    p = chainProject();
    // A long debounce: a burst of edits is written in a few milliseconds, far less than this.
    w = new Watcher(p, ['--debounce', '500']);
    await w.next(0, 'watch-idle');
    assert.deepEqual(p.runs(), ['evaluate', 'prepare', 'train'], 'the first cycle brings everything up to date');
  });
  after(async () => {
    if (w) {
      const r = await w.stop();
      assert.equal(r.exitCode, 0, 'Ctrl-C is a clean stop');
      const stop = await w.next(0, 'watch-stop');
      assert.ok(stop.event.cycles >= 5);
    }
    p?.remove();
  });

  test('editing a config key runs only the stages that read it, once', async () => {
    const m = w.mark();
    p.write('configs/default.yaml', p.read('configs/default.yaml').replace('lr: 0.001', 'lr: 0.0005'));
    const { cycle, idle } = await w.cycleFor(m, 'configs/default.yaml');
    assert.deepEqual(w.started(cycle, idle), ['evaluate', 'train']);
    assert.deepEqual(p.runs(), ['evaluate', 'train']);
    const last = (await w.next(cycle, 'watch-idle')).event.stages;
    assert.deepEqual(
      last.map((s) => [s.name, s.outcome]),
      [
        ['prepare', 'fresh'],
        ['train', 'ran'],
        ['evaluate', 'ran'],
      ],
    );
  });

  test('editing a key nobody reads runs nothing', async () => {
    const m = w.mark();
    p.write('configs/default.yaml', p.read('configs/default.yaml').replace('nobody reads this', 'still nobody'));
    const { cycle, idle } = await w.cycleFor(m, 'configs/default.yaml');
    assert.deepEqual(w.started(cycle, idle), []);
    assert.deepEqual(p.runs(), []);
  });

  test('a burst of 20 edits makes one run', async () => {
    const m = w.mark();
    for (let i = 0; i < 20; i++) p.write('data/raw.txt', `Hello burst ${i}\n`);
    const { idle } = await w.cycleFor(m, 'data/raw.txt');
    assert.deepEqual(p.runs(), ['evaluate', 'prepare', 'train'], 'each stage ran once');
    assert.equal(w.events.slice(m, idle).filter((e) => e.type === 'watch-cycle').length, 1);
    assert.match(p.read('artifacts/clean.txt'), /burst 19/, 'with the last edit');
  });

  test("the run's own writes (outs, pipeline.lock, .pipeline/) trigger nothing", async () => {
    // The cycles above wrote outs and the lock; had those triggered, a cycle would list them.
    for (const e of w.events) {
      if (e.type !== 'watch-cycle') continue;
      for (const c of e.changes) assert.doesNotMatch(c.path, /^(artifacts\/|\.pipeline\/|pipeline\.lock)/);
    }
  });

  test('malformed YAML is shown, watching goes on, and the fix runs', async () => {
    const good = p.read('configs/default.yaml');
    let m = w.mark();
    p.write('configs/default.yaml', 'train:\n  lr: [0.1\n');
    const err = await w.next(m, 'watch-error');
    assert.equal(err.event.failure?.reason, 'yaml');
    assert.match(err.event.message, /configs\/default\.yaml:\d+/);
    await w.next(err.at, 'watch-idle');
    assert.deepEqual(p.runs(), []);

    m = w.mark();
    p.write('configs/default.yaml', good.replace('epochs: 3', 'epochs: 4'));
    await w.cycleFor(m, 'configs/default.yaml');
    assert.deepEqual(p.runs(), ['evaluate', 'train']);
  });

  test('an invalid pipeline.ts is shown; once fixed, the new definition is watched and run', async () => {
    const good = p.read('pipeline.ts');
    let m = w.mark();
    p.write('pipeline.ts', `${good}\nconst broken = ;\n`);
    const err = await w.next(m, 'watch-error');
    assert.match(err.event.message, /pipeline\.ts/);
    await w.next(err.at, 'watch-idle');
    assert.deepEqual(p.runs(), []);

    // Fixed, with one more stage reading a new file: the watched paths follow the definition.
    p.write('data/extra.txt', 'one');
    p.write('stages/extra.ts', countingStage('extra', { deps: ['data/extra.txt'], outs: ['artifacts/extra.txt'] }));
    m = w.mark();
    p.write('pipeline.ts', pipelineFile(['prepare', 'train', 'evaluate', 'extra']));
    const reload = await w.next(m, 'watch-reload');
    assert.deepEqual(reload.event.stages, ['prepare', 'train', 'evaluate', 'extra']);
    await w.next(reload.at, 'watch-idle');
    assert.deepEqual(p.runs(), ['extra']);

    m = w.mark();
    p.write('data/extra.txt', 'two');
    await w.cycleFor(m, 'data/extra.txt');
    assert.deepEqual(p.runs(), ['extra']);
  });

  test("editing a stage's module reruns it", async () => {
    const m = w.mark();
    p.write('stages/extra.ts', `${p.read('stages/extra.ts')}\n// edited\n`);
    const { cycle, idle } = await w.cycleFor(m, 'stages/extra.ts');
    assert.deepEqual(w.started(cycle, idle), ['extra']);
    p.runs();
  });

  test('a failing stage is shown, the watcher goes on, and the fix runs', async () => {
    const good = p.read('stages/extra.ts');
    let m = w.mark();
    p.write('stages/extra.ts', good.replace('async run(ctx) {', 'async run(ctx) {\n    throw new Error("boom");'));
    const failed = await w.next(m, 'stage-failure', (e) => e.stage === 'extra');
    assert.equal(failed.event.failure.reason, 'threw');
    const idle = await w.next(failed.at, 'watch-idle');
    assert.equal(idle.event.stages.find((s) => s.name === 'extra')?.outcome, 'failed');

    m = w.mark();
    p.write('stages/extra.ts', `${good}\n// fixed\n`);
    await w.next(m, 'stage-success', (e) => e.stage === 'extra');
    await w.next(m, 'watch-idle');
    p.runs();
  });
});

/**
 * `slow` waits until the file `release` exists (or it is stopped); `listing` lists a folder dep.
 */
function slowProject(): Project {
  return Project.create({
    'data/in.txt': 'v1',
    'data/images/a.png': 'a',
    release: '',
    'stages/slow.ts': countingStage('slow', {
      deps: ['data/in.txt'],
      outs: ['out/slow.txt'],
      imports: `import { existsSync } from 'node:fs';`,
      body: `writeFileSync(ctx.path('slow.started'), process.pid + ' ' + input);
    while (!existsSync(ctx.path('release'))) {
      if (ctx.signal.aborted) throw new Error('stopped');
      await new Promise((r) => setTimeout(r, 50));
    }
    writeFileSync(ctx.outs[0], 'slow:' + input);`,
    }),
    'stages/listing.ts': countingStage('listing', { deps: ['data/images'], outs: ['out/listing.txt'] }),
    'pipeline.ts': pipelineFile(['slow', 'listing']),
  });
}

/** Two stages that each wait for their own file, so both run at once for as long as the test likes. */
function twoGatedProject(): Project {
  const gated = (name: string, dep: string, gate: string) =>
    countingStage(name, {
      deps: [dep],
      outs: [`out/${name}.txt`],
      imports: `import { existsSync } from 'node:fs';`,
      body: `writeFileSync(ctx.path('${name}.started'), input);
    while (!existsSync(ctx.path('${gate}'))) {
      if (ctx.signal.aborted) throw new Error('stopped');
      await new Promise((r) => setTimeout(r, 50));
    }
    writeFileSync(ctx.outs[0], '${name}:' + input);`,
    });
  return Project.create({
    'data/in.txt': 'v1',
    'data/other.txt': 'w1',
    release: '',
    'release-other': '',
    'stages/slow.ts': gated('slow', 'data/in.txt', 'release'),
    'stages/other.ts': gated('other', 'data/other.txt', 'release-other'),
    'pipeline.ts': pipelineFile(['slow', 'other']),
  });
}

describe('watch: cancelling one of two running stages', () => {
  test('only the stage whose input changed is stopped and rerun; the one beside it finishes once', async () => {
    const p = twoGatedProject();
    const w = new Watcher(p, ['--debounce', '200', '--jobs', '2']);
    try {
      await w.next(0, 'watch-idle');
      assert.deepEqual(p.runs(), ['other', 'slow']);
      rmSync(p.path('release'));
      rmSync(p.path('release-other'));
      let m = w.mark();
      p.write('data/in.txt', 'v2');
      p.write('data/other.txt', 'w2');
      await w.next(m, 'stage-start', (e) => e.stage === 'slow');
      await w.next(m, 'stage-start', (e) => e.stage === 'other');
      for (let i = 0; i < 600 && !(p.read('slow.started') === 'v2' && p.read('other.started') === 'w2'); i++)
        await sleep(100);

      m = w.mark();
      p.write('data/in.txt', 'v3');
      const cancel = await w.next(m, 'watch-cancel');
      assert.deepEqual(cancel.event.stages, ['slow']);
      await w.next(cancel.at, 'stage-failure', (e) => e.stage === 'slow');
      p.write('release-other', '');
      const done = await w.next(cancel.at, 'stage-success', (e) => e.stage === 'other');
      assert.ok(
        !w.events.slice(m).some((e) => e.type === 'stage-failure' && e.stage === 'other'),
        'other was not stopped',
      );
      const again = await w.next(done.at, 'stage-start', (e) => e.stage === 'slow');
      for (let i = 0; i < 600 && p.read('slow.started') !== 'v3'; i++) await sleep(100);
      p.write('release', '');
      await w.next(again.at, 'stage-success', (e) => e.stage === 'slow');
      await w.next(again.at, 'watch-idle');
      assert.equal(p.read('out/slow.txt'), 'slow:v3');
      assert.equal(p.read('out/other.txt'), 'other:w2');
      assert.deepEqual(p.runs(), ['other', 'slow', 'slow'], 'other ran once, slow twice');
    } finally {
      await w.stop();
      p.remove();
    }
  });
});

describe('watch: cancelling, folders, Ctrl-C', () => {
  let p: Project;
  let w: Watcher;
  before(async () => {
    p = slowProject();
    w = new Watcher(p, ['--debounce', '200', '--jobs', '2']);
    await w.next(0, 'watch-idle');
    assert.deepEqual(p.runs(), ['listing', 'slow']);
  });
  after(async () => {
    if (w) await w.stop();
    p?.remove();
  });

  test('an edit during a running stage cancels it cleanly, and it reruns with the new input', async () => {
    const lockBefore = p.read('pipeline.lock');
    rmSync(p.path('release'));
    let m = w.mark();
    p.write('data/in.txt', 'v2');
    const first = await w.next(m, 'stage-start', (e) => e.stage === 'slow');
    for (let i = 0; i < 600 && !p.read('slow.started').endsWith('v2'); i++) await sleep(100);
    const pid = Number(p.read('slow.started').split(' ')[0]);

    m = w.mark();
    p.write('data/in.txt', 'v3');
    const cancel = await w.next(m, 'watch-cancel');
    assert.deepEqual(cancel.event.stages, ['slow']);
    assert.deepEqual(cancel.event.paths, ['data/in.txt']);
    const stopped = await w.next(cancel.at, 'stage-failure', (e) => e.stage === 'slow');
    assert.equal(stopped.event.failure.reason, 'aborted');
    assert.ok(!alive(pid), 'the cancelled stage process is gone');
    assert.equal(p.read('pipeline.lock'), lockBefore, 'nothing recorded for the cancelled run');
    assert.equal(p.read('out/slow.txt'), 'slow:v1', 'the previous out is back');

    const again = await w.next(stopped.at, 'stage-start', (e) => e.stage === 'slow');
    assert.ok(again.at > first.at);
    for (let i = 0; i < 600 && !p.read('slow.started').endsWith('v3'); i++) await sleep(100);
    // Exactly one slow stage at a time: the cancelled one ended before this one began.
    const between = w.events.slice(first.at, again.at).filter((e) => e.type === 'stage-start' && e.stage === 'slow');
    assert.equal(between.length, 1);
    p.write('release', '');
    await w.next(again.at, 'stage-success', (e) => e.stage === 'slow');
    await w.next(again.at, 'watch-idle');
    assert.equal(p.read('out/slow.txt'), 'slow:v3');
    assert.deepEqual(p.runs(), ['slow', 'slow']);
    const status = await p.statusJson();
    assert.deepEqual(
      status.stages.map((s) => s.state),
      ['fresh', 'fresh'],
    );
  });

  test('a file added to a folder dep is seen, and a deleted one too', async () => {
    let m = w.mark();
    p.write('data/images/b.png', 'b');
    await w.cycleFor(m, 'data/images/b.png');
    assert.deepEqual(p.runs(), ['listing']);
    assert.match(p.read('out/listing.txt'), /a\.png,b\.png/);

    m = w.mark();
    rmSync(p.path('data/images/a.png'));
    await w.cycleFor(m, 'data/images/a.png');
    assert.deepEqual(p.runs(), ['listing']);
    // A new file is watched too: editing it is a change.
    m = w.mark();
    p.write('data/images/b.png', 'bb');
    await w.cycleFor(m, 'data/images/b.png');
    assert.deepEqual(p.runs(), ['listing']);
  });

  test('a deleted folder dep is reported; made again, it is watched again', async () => {
    let m = w.mark();
    rmSync(p.path('data/images'), { recursive: true });
    const err = await w.next(m, 'watch-error');
    assert.equal(err.event.failure?.reason, 'missing-dep');
    await w.next(err.at, 'watch-idle');

    m = w.mark();
    p.write('data/images/c.png', 'c');
    // Made with its file at once: seen as the folder (added), or as the file too.
    await w.cycleFor(m, /^data\/images(\/c\.png)?$/);
    assert.deepEqual(p.runs(), ['listing']);
    assert.match(p.read('out/listing.txt'), /:c\.png:/);
  });

  test('Ctrl-C during a run stops it, records nothing, and exits 0 with a summary', async () => {
    const lockBefore = p.read('pipeline.lock');
    rmSync(p.path('release'));
    rmSync(p.path('slow.started'));
    const m = w.mark();
    p.write('data/in.txt', 'v4');
    await w.next(m, 'stage-start', (e) => e.stage === 'slow');
    for (let i = 0; i < 600 && !p.exists('slow.started'); i++) await sleep(100);
    const pid = Number(p.read('slow.started').split(' ')[0]);
    const r = await w.stop();
    assert.equal(r.exitCode, 0);
    const stop = await w.next(m, 'watch-stop');
    assert.ok(stop.event.cancelled >= 1);
    assert.ok(!alive(pid), 'the running stage was stopped');
    assert.equal(p.read('pipeline.lock'), lockBefore);
    assert.equal(p.read('out/slow.txt'), 'slow:v3');
    p.runs();
  });
});

describe('watch: usage', () => {
  test('an unknown target is a usage error (exit 2) with a suggestion', async () => {
    const p = Project.create({
      'data/in.txt': 'x',
      'pipeline.ts': `import { definePipeline, runIfMain, stage } from ${JSON.stringify(ENGINE)};
const pipeline = definePipeline([stage('copy', { deps: ['data/in.txt'], outs: ['out.txt'], cmd: 'cp data/in.txt out.txt' })]);
export default pipeline;
await runIfMain(import.meta.url, pipeline);
`,
    });
    try {
      const r = await p.cli('watch', 'cpy');
      assert.equal(r.exitCode, 2);
      assert.match(r.stderr, /no stage is named 'cpy'. Did you mean 'copy'/);
    } finally {
      p.remove();
    }
  });
});
