// A report as a list of blocks, and its two renderings: GitHub-flavoured markdown (charts as image
// files next to it) and one self-contained HTML page (charts inline, CSS inline, nothing fetched).
// Report builders only make blocks, so the two renderings cannot drift apart.
//
// Text may carry two inline marks, the same in both outputs: `code` and **bold**.

/** A rendered chart: `file` is its name next to report.md, `svg` its bytes. */
export interface Chart {
  file: string;
  title: string;
  svg: string;
}

export type Block =
  | { kind: 'heading'; level: 1 | 2 | 3; text: string }
  | { kind: 'text'; text: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'callout'; tone: 'warning' | 'note'; text: string }
  | { kind: 'table'; head: string[]; rows: string[][]; align?: Array<'left' | 'right'> }
  | { kind: 'code'; lang: string; text: string }
  | { kind: 'chart'; chart: Chart }
  /** A small-print line: caveats about where a number came from. */
  | { kind: 'small'; text: string };

// ---- markdown ----------------------------------------------------------------------------------

const mdCell = (s: string) => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

function mdBlock(b: Block): string {
  switch (b.kind) {
    case 'heading':
      return `${'#'.repeat(b.level)} ${b.text}`;
    case 'text':
      return b.text;
    case 'list':
      return b.items.map((i) => `- ${i}`).join('\n');
    case 'callout':
      return [`> [!${b.tone === 'warning' ? 'WARNING' : 'NOTE'}]`, ...b.text.split('\n').map((l) => `> ${l}`)].join(
        '\n',
      );
    case 'table': {
      const rule = b.head.map((_, i) => (b.align?.[i] === 'right' ? '---:' : '---'));
      const row = (cells: string[]) => `| ${cells.map(mdCell).join(' | ')} |`;
      return [row(b.head), `| ${rule.join(' | ')} |`, ...b.rows.map(row)].join('\n');
    }
    case 'code': {
      const fence = b.text.includes('```') ? '~~~' : '```';
      return `${fence}${b.lang}\n${b.text.replace(/\n$/, '')}\n${fence}`;
    }
    case 'chart':
      return `![${b.chart.title}](${encodeURI(b.chart.file)})`;
    case 'small':
      return `<sub>${b.text}</sub>`;
  }
}

export function toMarkdown(blocks: Block[]): string {
  return `${blocks.map(mdBlock).join('\n\n')}\n`;
}

// ---- html --------------------------------------------------------------------------------------

export const escapeHtml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Escape, then turn the two inline marks into elements. */
function inline(s: string): string {
  return escapeHtml(s)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>');
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

function htmlBlock(b: Block): string {
  switch (b.kind) {
    case 'heading':
      return `<h${b.level} id="${slug(b.text)}">${inline(b.text)}</h${b.level}>`;
    case 'text':
      return `<p>${inline(b.text)}</p>`;
    case 'list':
      return `<ul>${b.items.map((i) => `<li>${inline(i)}</li>`).join('')}</ul>`;
    case 'callout':
      return `<div class="callout ${b.tone}"><strong>${b.tone === 'warning' ? 'Warning' : 'Note'}</strong> ${b.text
        .split('\n')
        .map(inline)
        .join('<br>')}</div>`;
    case 'table': {
      const cls = (i: number) => (b.align?.[i] === 'right' ? ' class="num"' : '');
      const head = b.head.map((h, i) => `<th${cls(i)}>${inline(h)}</th>`).join('');
      const rows = b.rows.map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${inline(c)}</td>`).join('')}</tr>`);
      return `<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table>`;
    }
    case 'code':
      return `<pre><code class="language-${escapeHtml(b.lang)}">${escapeHtml(b.text.replace(/\n$/, ''))}</code></pre>`;
    case 'chart':
      return `<figure class="chart">\n${b.chart.svg}\n<figcaption>${inline(b.chart.title)}</figcaption>\n</figure>`;
    case 'small':
      return `<p class="small">${inline(b.text)}</p>`;
  }
}

const CSS = `
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  color: #1f2328; background: #fff; margin: 0; }
main { max-width: 980px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 1.8em; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.35em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 1.8em; }
h3 { font-size: 1.1em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: 12px 0; font-size: 14px; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafbfc; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f2f4f7;
  padding: .1em .3em; border-radius: 4px; }
pre { background: #f6f8fa; padding: 12px 16px; border-radius: 6px; overflow: auto; }
pre code { background: none; padding: 0; }
.callout { border-left: 4px solid #0969da; background: #ddf4ff; padding: 10px 14px; margin: 14px 0;
  border-radius: 0 6px 6px 0; }
.callout.warning { border-color: #bf8700; background: #fff8c5; }
.small { font-size: 12px; color: #57606a; }
figure.chart { margin: 16px 0; overflow-x: auto; }
figure.chart svg { max-width: 100%; height: auto; }
figcaption { font-size: 13px; color: #57606a; }
`.trim();

export function toHtml(title: string, blocks: Block[]): string {
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>\n${CSS}\n</style>`,
    '</head>',
    '<body>',
    '<main>',
    ...blocks.map(htmlBlock),
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
