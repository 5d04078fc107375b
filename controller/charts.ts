// The run's PNG charts, all on one time axis (seconds since the run started): client QPS (target
// vs sent vs answered), server QPS, envelopes, connections, latency, packets per second. Rendered
// with chartjs-node-canvas (canvas = @napi-rs/canvas), loaded lazily so the agent never needs it.
// The text is drawn in a font shipped as an npm package (@fontsource/dejavu-sans) and registered
// with the canvas, so a machine without any system font draws the same charts as one with them.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Row } from './timeline.ts';
import { latestRows } from './summary.ts';

export const CHART_NAMES = ['client-qps', 'server-qps', 'envelopes', 'connections', 'latency', 'pps'] as const;
export type ChartName = (typeof CHART_NAMES)[number];
export const CHART_WIDTH = 1200;
export const CHART_HEIGHT = 520;

interface Line {
  label: string;
  color: string;
  values: (r: Row) => number | null | undefined;
  stepped?: boolean;
  dashed?: boolean;
}

interface ChartDef {
  title: string;
  yTitle: string;
  lines: Line[];
}

const defs: Record<ChartName, ChartDef> = {
  'client-qps': {
    title: 'Client QPS: target vs sent vs answered',
    yTitle: 'shakes per second',
    lines: [
      { label: 'target', color: '#111111', values: (r) => r.targetQps, stepped: true, dashed: true },
      { label: 'sent', color: '#1f77b4', values: (r) => r.client.sent },
      { label: 'answered', color: '#2ca02c', values: (r) => r.client.answered, dashed: true },
      { label: 'missed', color: '#d62728', values: (r) => r.client.missed },
    ],
  },
  'server-qps': {
    title: 'Server QPS (stub counters)',
    yTitle: 'per second',
    lines: [
      { label: 'shakes received', color: '#1f77b4', values: (r) => r.server?.shakes },
      { label: 'served (won + empty)', color: '#2ca02c', values: (r) => (r.server ? r.server.won + r.server.empty : null) },
      { label: 'overload', color: '#d62728', values: (r) => r.server?.overload },
      { label: 'errors', color: '#9467bd', values: (r) => r.server?.errors },
    ],
  },
  envelopes: {
    title: 'Envelopes per second',
    yTitle: 'envelopes per second',
    lines: [
      { label: 'generated', color: '#ff7f0e', values: (r) => r.server?.generated },
      { label: 'won by shaking', color: '#2ca02c', values: (r) => r.server?.won },
      { label: 'sent to 3 users', color: '#1f77b4', values: (r) => r.server?.sent },
      { label: 'claims', color: '#9467bd', values: (r) => r.server?.claims },
    ],
  },
  connections: {
    title: 'Connections',
    yTitle: 'open connections',
    lines: [
      { label: 'agents (logged in)', color: '#1f77b4', values: (r) => r.client.connections },
      { label: 'server', color: '#ff7f0e', values: (r) => r.server?.connections, dashed: true },
    ],
  },
  latency: {
    title: 'Latency from the scheduled instant to the reply (no coordinated omission)',
    yTitle: 'milliseconds',
    lines: [
      { label: 'p50', color: '#2ca02c', values: (r) => (r.client.answered ? r.client.p50Ms : null) },
      { label: 'p90', color: '#1f77b4', values: (r) => (r.client.answered ? r.client.p90Ms : null) },
      { label: 'p99', color: '#ff7f0e', values: (r) => (r.client.answered ? r.client.p99Ms : null) },
      { label: 'max', color: '#d62728', values: (r) => (r.client.answered ? r.client.maxMs : null), dashed: true },
    ],
  },
  pps: {
    title: 'Server NIC packets per second',
    yTitle: 'packets per second',
    lines: [
      { label: 'rx', color: '#1f77b4', values: (r) => r.server?.rxPackets },
      { label: 'tx', color: '#ff7f0e', values: (r) => r.server?.txPackets },
    ],
  },
};

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
  const def = defs[name];
  const start = rows[0]?.second ?? 0;
  return {
    type: 'line',
    data: {
      datasets: def.lines.map((l) => ({
        label: l.label,
        data: rows.map((r) => ({ x: r.second - start, y: l.values(r) ?? null })),
        borderColor: l.color,
        backgroundColor: l.color,
        borderWidth: 2,
        borderDash: l.dashed ? [6, 4] : undefined,
        pointRadius: 0,
        stepped: l.stepped ? 'middle' : false,
        spanGaps: false,
      })),
    },
    options: {
      animation: false,
      responsive: false,
      parsing: true,
      plugins: {
        title: { display: true, text: `${def.title}  (run ${runId})`, font: { size: 18 } },
        legend: { display: true, position: 'top' },
      },
      scales: {
        x: { type: 'linear', title: { display: true, text: `seconds since run start (${hhmmss(start)} UTC)` }, ticks: { precision: 0 } },
        y: { beginAtZero: true, title: { display: true, text: def.yTitle } },
      },
    },
  };
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
    writeFileSync(path + '.tmp', png);
    renameSync(path + '.tmp', path);
    paths.push(path);
  }
  return paths;
}

/** The chart definitions for the browser dashboard, value functions as source text: one definition for PNGs and dashboard. */
export function chartDefsSource(): string {
  return JSON.stringify(
    CHART_NAMES.map((name) => ({
      name,
      title: defs[name].title,
      yTitle: defs[name].yTitle,
      lines: defs[name].lines.map((l) => ({ label: l.label, color: l.color, stepped: !!l.stepped, dashed: !!l.dashed, fn: l.values.toString() })),
    })),
  );
}
