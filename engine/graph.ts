// The DAG: normalise paths, derive edges (a stage depends on whichever stage writes a path its deps
// cover), and reject what cannot be run: cycles, two producers of one path, outs outside the project,
// deps nobody makes. Pure: reads the file system only to ask whether a source dep exists.

import { existsSync } from 'node:fs';
import path from 'node:path';
import picomatch from 'picomatch';
import { isDynamicPattern } from 'tinyglobby';
import { nearest } from './config.ts';
import { PipelineError } from './failure.ts';
import type { OutRole, Pipeline, Stage, StageName } from './types.ts';

export interface GraphOut {
  path: string;
  role: OutRole;
  persist: boolean;
}

export interface GraphStage {
  stage: Stage;
  name: StageName;
  deps: string[];
  outs: GraphOut[];
  /** Stages whose outs this stage reads. */
  upstream: StageName[];
  downstream: StageName[];
}

export interface Graph {
  root: string;
  /** In topological order (ties broken by declaration order). */
  stages: GraphStage[];
  byName: Map<StageName, GraphStage>;
}

/** `./data//x/` -> `data/x`; absolute paths inside the root become relative. */
export function normalizePath(root: string, p: string): string {
  const rel = path.isAbsolute(p) ? path.relative(root, p) : p;
  return path.posix.normalize(rel.split(path.sep).join('/')).replace(/\/+$/, '').replace(/^\.\//, '');
}

const within = (child: string, parent: string) => child === parent || child.startsWith(`${parent}/`);

function covers(dep: string, out: string): boolean {
  if (isDynamicPattern(dep)) {
    const { base } = picomatch.scan(dep);
    return picomatch(dep, { dot: true })(out) || (dep.includes('**') && within(out, base));
  }
  return within(dep, out) || within(out, dep);
}

export function buildGraph(root: string, pipeline: Pipeline): Graph {
  const nodes: GraphStage[] = pipeline.stages.map((stage) => ({
    stage,
    name: stage.name,
    deps: (stage.deps ?? []).map((d) => normalizePath(root, d)),
    outs: (stage.outs ?? []).map((o) =>
      typeof o === 'string'
        ? { path: normalizePath(root, o), role: 'out' as OutRole, persist: false }
        : { path: normalizePath(root, o.path), role: o.role ?? 'out', persist: Boolean(o.persist) },
    ),
    upstream: [],
    downstream: [],
  }));

  // Outs: inside the project, and one producer per path (nested paths count as the same path).
  const producers: Array<{ path: string; stage: StageName }> = [];
  for (const n of nodes) {
    for (const o of n.outs) {
      if (o.path === '' || o.path === '.' || o.path.startsWith('../') || o.path === '..' || path.isAbsolute(o.path)) {
        throw new PipelineError({ reason: 'out-outside-project', stage: n.name, path: o.path || '.' });
      }
      const clash = producers.find((p) => p.stage !== n.name && (within(o.path, p.path) || within(p.path, o.path)));
      if (clash) throw new PipelineError({ reason: 'duplicate-out', path: o.path, stages: [clash.stage, n.name] });
      producers.push({ path: o.path, stage: n.name });
    }
  }

  // Edges, and deps that nothing makes.
  for (const n of nodes) {
    for (const dep of n.deps) {
      const from = producers.filter((p) => covers(dep, p.path)).map((p) => p.stage);
      for (const up of from) {
        if (!n.upstream.includes(up)) n.upstream.push(up);
      }
      if (from.length === 0 && !isDynamicPattern(dep) && !existsSync(path.join(root, dep))) {
        throw new PipelineError({ reason: 'missing-dep', stage: n.name, path: dep });
      }
    }
  }
  const byName = new Map(nodes.map((n) => [n.name, n]));
  for (const n of nodes) for (const up of n.upstream) byName.get(up)?.downstream.push(n.name);

  const cycle = findCycle(nodes, byName);
  if (cycle) throw new PipelineError({ reason: 'cycle', cycle });

  return { root, stages: topoSort(nodes, byName), byName };
}

function findCycle(nodes: GraphStage[], byName: Map<StageName, GraphStage>): string[] | undefined {
  const state = new Map<StageName, 'open' | 'done'>();
  const trail: StageName[] = [];
  const visit = (n: GraphStage): string[] | undefined => {
    state.set(n.name, 'open');
    trail.push(n.name);
    for (const up of n.upstream) {
      if (state.get(up) === 'open') {
        // trail holds consumers before producers; print it in data-flow order.
        return [...trail.slice(trail.indexOf(up)), up].reverse();
      }
      if (!state.has(up)) {
        const found = visit(byName.get(up) as GraphStage);
        if (found) return found;
      }
    }
    trail.pop();
    state.set(n.name, 'done');
    return undefined;
  };
  for (const n of nodes) {
    if (!state.has(n.name)) {
      const found = visit(n);
      if (found) return found;
    }
  }
  return undefined;
}

function topoSort(nodes: GraphStage[], byName: Map<StageName, GraphStage>): GraphStage[] {
  const indegree = new Map(nodes.map((n) => [n.name, n.upstream.length]));
  const order: GraphStage[] = [];
  const ready = nodes.filter((n) => n.upstream.length === 0);
  while (ready.length > 0) {
    const n = ready.shift() as GraphStage;
    order.push(n);
    for (const d of n.downstream) {
      indegree.set(d, (indegree.get(d) as number) - 1);
      if (indegree.get(d) === 0) ready.push(byName.get(d) as GraphStage);
    }
    // Keep declaration order among stages that became ready together.
    ready.sort((a, b) => nodes.indexOf(a) - nodes.indexOf(b));
  }
  return order;
}

function closure(graph: Graph, start: StageName[], dir: 'upstream' | 'downstream'): Set<StageName> {
  const seen = new Set<StageName>();
  const stack = [...start];
  while (stack.length > 0) {
    const name = stack.pop() as StageName;
    if (seen.has(name)) continue;
    seen.add(name);
    stack.push(...(graph.byName.get(name) as GraphStage)[dir]);
  }
  return seen;
}

/**
 * The stages a command acts on, in topological order: all of them by default; the named targets and
 * everything they need; or, with `downstream`, the targets and everything that reads their outs.
 */
export function selectStages(graph: Graph, targets: string[], downstream = false): GraphStage[] {
  if (targets.length === 0) return graph.stages;
  for (const t of targets) {
    if (!graph.byName.has(t as StageName)) {
      throw new PipelineError({ reason: 'unknown-stage', name: t, suggestion: nearest(t, [...graph.byName.keys()]) });
    }
  }
  const set = closure(graph, targets as StageName[], downstream ? 'downstream' : 'upstream');
  return graph.stages.filter((s) => set.has(s.name));
}
