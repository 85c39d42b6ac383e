// `dag`: the graph as text. ASCII layers for the terminal (each stage with the stages it reads from),
// Mermaid for Markdown, Graphviz dot for everything else.

import type { Graph } from './graph.ts';

/** Longest distance from a source: stages on one layer can run in parallel. */
function layers(graph: Graph): Map<string, number> {
  const depth = new Map<string, number>();
  for (const s of graph.stages) depth.set(s.name, Math.max(-1, ...s.upstream.map((u) => depth.get(u) ?? 0)) + 1);
  return depth;
}

export function renderAscii(graph: Graph): string {
  if (graph.stages.length === 0) return '(no stages declared in pipeline.ts)';
  const depth = layers(graph);
  const width = Math.max(...graph.stages.map((s) => s.name.length));
  const lines: string[] = [];
  const max = Math.max(...depth.values());
  for (let d = 0; d <= max; d++) {
    lines.push(`layer ${d}`);
    for (const s of graph.stages.filter((x) => depth.get(x.name) === d)) {
      const from = s.upstream.length ? ` ◀── ${s.upstream.join(', ')}` : '';
      const what = s.stage.description ? `  # ${s.stage.description}` : '';
      lines.push(`  ${s.name.padEnd(width)}${from}${what}`);
    }
  }
  return lines.join('\n');
}

const edges = (graph: Graph) => graph.stages.flatMap((s) => s.upstream.map((u) => [u, s.name] as const));

export function renderMermaid(graph: Graph): string {
  const lines = ['flowchart TD'];
  for (const s of graph.stages) lines.push(`  ${s.name.replace(/-/g, '_')}["${s.name}"]`);
  for (const [a, b] of edges(graph)) lines.push(`  ${a.replace(/-/g, '_')} --> ${b.replace(/-/g, '_')}`);
  return lines.join('\n');
}

export function renderDot(graph: Graph): string {
  const lines = ['digraph pipeline {', '  rankdir=LR;', '  node [shape=box];'];
  for (const s of graph.stages) lines.push(`  "${s.name}";`);
  for (const [a, b] of edges(graph)) lines.push(`  "${a}" -> "${b}";`);
  lines.push('}');
  return lines.join('\n');
}
