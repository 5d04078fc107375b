// Checks that a chart PNG decodes, has the chart size, and has something drawn on it.
import type { ExecutionContext } from 'ava';
import { createCanvas, loadImage } from 'canvas';
import { readFileSync } from 'node:fs';
import { CHART_HEIGHT, CHART_WIDTH } from '../../controller/charts.ts';

export async function assertReadablePng(t: ExecutionContext, path: string): Promise<void> {
  const img = await loadImage(readFileSync(path));
  t.is(img.width, CHART_WIDTH, path);
  t.is(img.height, CHART_HEIGHT, path);
  const canvas = createCanvas(img.width, img.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height).data;
  const colours = new Set<number>();
  let nonWhite = 0;
  for (let i = 0; i < data.length; i += 4 * 7) {
    const rgb = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    colours.add(rgb);
    if (rgb !== 0xffffff) nonWhite++;
  }
  t.true(colours.size > 5, `${path} has more than a few colours`);
  t.true(nonWhite > 1000, `${path} is not blank`);
}
