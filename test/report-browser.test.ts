// The reports as a person sees them: the HTML a real pipeline run writes, and a sweep report, opened in
// headless Chromium (Debian's `chromium`, which .ci/run installs, driven by playwright-core). Every plot
// renders with a size, the page logs no console errors, and the screenshot is not blank.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import sharp from 'sharp';
import { writeSweepReport } from '../stages/report/sweep-report.ts';
import { Project } from './rig.ts';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
// Skipped only on a machine without Chromium; CI (REQUIRE_CHROMIUM=1, set by .ci/run) never skips.
const missing =
  !existsSync(CHROMIUM) &&
  !process.env.REQUIRE_CHROMIUM &&
  `no Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run does)`;

async function look(browser: Browser, file: string, screenshot: string) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:')) errors.push(`requested ${r.url()}`);
  });
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  const boxes = await page.$$eval('svg', (svgs) =>
    svgs.map((s) => {
      const r = s.getBoundingClientRect();
      return { width: r.width, height: r.height, marks: s.querySelectorAll('path, rect, line, text').length };
    }),
  );
  await page.screenshot({ path: screenshot, fullPage: true });
  await page.close();
  const { channels } = await sharp(screenshot).stats();
  return { errors, boxes, spread: Math.max(...channels.map((c) => c.stdev)) };
}

describe('reports in a real headless browser', { skip: missing }, () => {
  let browser: Browser;
  let p: Project;
  let shots: string;
  before(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
    p = Project.repoCopy().offline();
    shots = mkdtempSync(path.join(tmpdir(), 'report-shots-'));
  });
  after(async () => {
    await browser?.close();
    p?.remove();
    rmSync(shots, { recursive: true, force: true });
  });

  test("the run report's every plot renders, with no console errors and no network", async () => {
    const r = await p.cli('run', '--set', 'data.count=200', '--set', 'train.max_epochs=5');
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    const seen = await look(browser, p.path('reports/latest/report.html'), path.join(shots, 'run.png'));
    assert.deepEqual(seen.errors, []);
    assert.equal(seen.boxes.length, 3, 'learning curves, confusion matrix, per-class F1');
    for (const b of seen.boxes) {
      assert.ok(b.width > 100 && b.height > 100, `plot rendered at ${b.width}x${b.height}`);
      assert.ok(b.marks > 10, `plot has ${b.marks} marks`);
    }
    assert.ok(seen.spread > 10, `screenshot is not blank (pixel stdev ${seen.spread})`);
  });

  test('a sweep report renders its chart', async () => {
    const rows = ['relu', 'gelu', 'tanh'].flatMap((act, i) =>
      [1, 2, 3].map((seed) => ({
        experiment: `act-${i * 3 + seed}`,
        params: { 'train.activation': act, 'train.seed': seed },
        seed,
        metrics: { 'test.accuracy': 0.8 + i * 0.03 + seed * 0.004 },
      })),
    );
    await writeSweepReport(shots, 'act', rows, { metric: 'test.accuracy' });
    const seen = await look(browser, path.join(shots, 'act.html'), path.join(shots, 'act.png'));
    assert.deepEqual(seen.errors, []);
    assert.equal(seen.boxes.length, 1);
    assert.ok(seen.boxes[0].width > 100 && seen.boxes[0].marks > 10);
    assert.ok(seen.spread > 10);
  });
});
