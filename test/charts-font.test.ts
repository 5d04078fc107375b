// Chart text on a machine without fonts: the charts draw their text in the font shipped as an npm
// package (@fontsource/dejavu-sans), so `hongbao chart` in a mount namespace where the system's font
// folders are empty draws the very same PNGs as with them (before: titles, legends and axes blank).
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCanvas, GlobalFonts, loadImage } from 'canvas';
import { CHART_FONT_FAMILY, FONT_PACKAGE, chartFontFiles, registerChartFont } from '../controller/charts.ts';
import { CLI, runCli, runProcess } from './helpers/process.ts';
import { needing } from './helpers/tools.ts';
import { writeRun } from './helpers/series.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Pixels darker than light grey in rows y0..y1 of a PNG (text; the chart's grid lines are lighter). */
async function darkPixels(path: string, y0: number, y1: number): Promise<number> {
  const img = await loadImage(readFileSync(path));
  const ctx = createCanvas(img.width, img.height).getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, y0, img.width, y1 - y0).data;
  let n = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] < 160 && data[i + 1] < 160 && data[i + 2] < 160) n++;
  return n;
}

test('charts: the font comes from its npm package and is registered with the canvas under its own family', (t) => {
  const files = chartFontFiles();
  t.is(files.length, 2);
  for (const f of files) {
    t.true(f.includes(join('node_modules', FONT_PACKAGE, 'files')), f);
    t.true(existsSync(f), f);
  }
  registerChartFont({ GlobalFonts });
  t.true(GlobalFonts.has(CHART_FONT_FAMILY));
  const family = GlobalFonts.families.find((f) => f.family === CHART_FONT_FAMILY);
  t.deepEqual(family?.styles.map((s) => s.weight).sort(), [400, 700], 'regular and bold');
});

// Hiding the system's fonts takes a mount namespace (root, unshare from util-linux).
const unshare = needing([['unshare', 'util-linux']]);
const asRoot = process.getuid?.() === 0;
(asRoot ? unshare.test : test.skip)(
  `hongbao chart on a machine without fonts draws the same charts, text included${unshare.why || (asRoot ? '' : ' (skipped: needs root to hide the system fonts in a mount namespace)')}`,
  async (t) => {
    t.timeout(60_000);
    const base = mkdtempSync(join(tmpdir(), 'hb-font-'));
    t.teardown(() => rmSync(base, { recursive: true, force: true }));
    const withFonts = writeRun(join(base, 'fonts'));
    const bare = writeRun(join(base, 'bare'));
    const r1 = await runCli(['chart', withFonts], {}, 30_000);
    t.is(r1.code, 0, r1.stderr);

    const fontDirs = ['/usr/share/fonts', '/usr/local/share/fonts', join(homedir(), '.fonts'), join(homedir(), '.local/share/fonts')].filter((d) => existsSync(d));
    const hide = fontDirs.map((d) => `mount -t tmpfs none '${d}'`).join(' && ');
    const probe = `node -e "console.log(JSON.stringify(require('canvas').GlobalFonts.families.map((f) => f.family)))"`;
    const script = `set -e; mount --make-rprivate /; ${hide}; ${probe}; exec '${process.execPath}' '${CLI}' chart '${bare}'`;
    const r2 = await runProcess('unshare', ['-m', 'sh', '-c', script], { cwd: ROOT, timeoutMs: 30_000 });
    t.is(r2.code, 0, r2.stderr);
    t.is(r2.stdout.split('\n')[0], '[]', 'no font at all in the namespace');

    for (const name of ['client-qps', 'latency']) {
      const a = join(withFonts, 'charts', `${name}.png`);
      const b = join(bare, 'charts', `${name}.png`);
      // Title (top) and x-axis title (bottom) are text only: drawn, not blank.
      t.true((await darkPixels(b, 5, 35)) > 500, `${name}: title drawn`);
      t.true((await darkPixels(b, 498, 518)) > 200, `${name}: x-axis title drawn`);
      t.true(readFileSync(a).equals(readFileSync(b)), `${name}: the same PNG with and without system fonts`);
    }
  },
);
