// The run's PNG charts, all on one time axis (seconds since the run started): client QPS (target
// vs sent vs answered), server QPS, envelopes, connections, latency, packets per second. Rendered
// with chartjs-node-canvas (canvas = @napi-rs/canvas), loaded lazily so the agent never needs it.
// The text is drawn in a font shipped as an npm package (@fontsource/dejavu-sans) and registered
// with the canvas, so a machine without any system font draws the same charts as one with them.
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Row } from './timeline.ts';
import { latestRows } from './summary.ts';
import { CHART_DEFS, CHART_NAMES, columnsOf, type ChartName } from './chart-defs.ts';
import { chartOptions, lineDatasets } from './chart-view.ts';
import { writeAtomic } from './files.ts';

export { CHART_NAMES, type ChartName } from './chart-defs.ts';
export const CHART_WIDTH = 1200;
export const CHART_HEIGHT = 520;

/** The family every chart's text is drawn in: DejaVu Sans from FONT_PACKAGE, under a name of its own. */
export const CHART_FONT_FAMILY = 'hongbao DejaVu Sans';
export const FONT_PACKAGE = '@fontsource/dejavu-sans';
/** Regular and bold (Chart.js draws titles bold); the latin subset covers every chart's text. */
const FONT_FILES = ['files/dejavu-sans-latin-400-normal.woff2', 'files/dejavu-sans-latin-700-normal.woff2'];

interface Canvas {
  GlobalFonts: { registerFromPath(path: string, alias?: string): unknown; has(family: string): boolean };
}

/**
 * The font files, found at run time beside the canvas packages (node_modules next to the project,
 * or next to dist/hongbao.cjs: the bundle resolves from its own folder, as it does chartjs-node-canvas).
 */
export function chartFontFiles(): string[] {
  const require = createRequire(import.meta.url);
  try {
    return FONT_FILES.map((f) => require.resolve(`${FONT_PACKAGE}/${f}`));
  } catch (err) {
    throw new Error(`charts need the ${FONT_PACKAGE} package for their text (npm ci in the project folder, or copy node_modules/${FONT_PACKAGE} next to the canvas packages): ${(err as Error).message}`);
  }
}

/** Registers the chart font with the canvas, once per process; throws when a file does not load. */
export function registerChartFont(canvas: Canvas): void {
  if (canvas.GlobalFonts.has(CHART_FONT_FAMILY)) return;
  for (const file of chartFontFiles()) {
    if (!canvas.GlobalFonts.registerFromPath(file, CHART_FONT_FAMILY)) throw new Error(`charts: the canvas could not load the font ${file}`);
  }
}

type Renderer = { renderToBufferSync: (config: unknown, mime: 'image/png') => Buffer };
let renderer: Renderer | undefined;

type ChartJs = { defaults: { font: { family: string } } };

async function getRenderer(): Promise<Renderer> {
  if (renderer) return renderer;
  let mod: { ChartJSNodeCanvas: new (o: { width: number; height: number; backgroundColour: string; chartCallback: (c: ChartJs) => void }) => Renderer };
  let canvas: Canvas;
  try {
    mod = (await import('chartjs-node-canvas')) as unknown as typeof mod;
    canvas = (await import('canvas')) as unknown as Canvas;
  } catch (err) {
    throw new Error(`charts need the chartjs-node-canvas and @napi-rs/canvas packages (npm ci in the project folder): ${(err as Error).message}`);
  }
  registerChartFont(canvas);
  renderer = new mod.ChartJSNodeCanvas({
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    backgroundColour: 'white',
    chartCallback: (chartJs) => {
      chartJs.defaults.font.family = CHART_FONT_FAMILY;
    },
  });
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
