// The run's PNG charts, all on one time axis (seconds since the run started): client QPS (target
// vs sent vs answered), server QPS, envelopes, connections, latency, packets per second. Rendered
// with chartjs-node-canvas (canvas = @napi-rs/canvas), loaded lazily so the agent never needs it.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Row } from './timeline.ts';
import { latestRows } from './summary.ts';
import { CHART_DEFS, CHART_NAMES, columnsOf, type ChartName } from './chart-defs.ts';
import { chartOptions, lineDatasets } from './chart-view.ts';
import { writeAtomic } from './files.ts';

export { CHART_NAMES, type ChartName } from './chart-defs.ts';
export const CHART_WIDTH = 1200;
export const CHART_HEIGHT = 520;

type Renderer = { renderToBufferSync: (config: unknown, mime: 'image/png') => Buffer };
let renderer: Renderer | undefined;

async function getRenderer(): Promise<Renderer> {
  if (renderer) return renderer;
  let mod: { ChartJSNodeCanvas: new (o: { width: number; height: number; backgroundColour: string }) => Renderer };
  try {
    mod = (await import('chartjs-node-canvas')) as unknown as typeof mod;
  } catch (err) {
    throw new Error(`charts need the chartjs-node-canvas and @napi-rs/canvas packages (npm ci in the project folder): ${(err as Error).message}`);
  }
  renderer = new mod.ChartJSNodeCanvas({ width: CHART_WIDTH, height: CHART_HEIGHT, backgroundColour: 'white' });
  return renderer;
}

function hhmmss(second: number): string {
  return new Date(second * 1000).toISOString().slice(11, 19);
}

export function chartConfig(name: ChartName, runId: string, rows: Row[]): unknown {
  const def = CHART_DEFS.find((d) => d.name === name)!;
  const start = rows[0]?.second ?? 0;
  const { x, charts } = columnsOf(rows, start);
  const options = chartOptions(def, { title: `${def.title}  (run ${runId})`, xTitle: `seconds since run start (${hhmmss(start)} UTC)`, titleSize: 18 });
  return { type: 'line', data: { datasets: lineDatasets(def, x, charts[name]) }, options: { ...options, responsive: false, parsing: true } };
}

/** Renders every chart into DIR/charts/NAME.png (written atomically); returns the paths. */
export async function renderCharts(runDir: string, runId: string, allRows: Row[]): Promise<string[]> {
  const r = await getRenderer();
  const rows = latestRows(allRows);
  const dir = join(runDir, 'charts');
  mkdirSync(dir, { recursive: true });
  const paths: string[] = [];
  for (const name of CHART_NAMES) {
    const png = r.renderToBufferSync(chartConfig(name, runId, rows), 'image/png');
    const path = join(dir, `${name}.png`);
    writeAtomic(path, png);
    paths.push(path);
  }
  return paths;
}
