// The browser side of the six charts, shared by the live dashboard (GET /) and report.html: Chart.js
// (only the parts a line chart needs), the datasets from chart-view.ts, a tooltip that reads every
// line at the hovered second, drag-to-select zoom (double-click resets) applied to all charts at
// once, and markers at the QPS changes. build.mjs bundles this file into one small script that the
// controller serves and report.html inlines; it is exposed as window.HB.
import { Chart, Legend, LinearScale, LineController, LineElement, PointElement, Title, Tooltip, type Plugin } from 'chart.js';
import { CHART_DEFS, columnsOf, type ChartName, type Columns } from '../chart-defs.ts';
import { chartOptions, lineDatasets, type Variant } from '../chart-view.ts';

Chart.register(LineController, LineElement, PointElement, LinearScale, Legend, Title, Tooltip);

export interface Marker {
  x: number;
  label: string;
  dash?: number[];
}

/** One run's columns on a chart group, with how its lines look. */
export interface RunColumns extends Columns {
  variant?: Variant;
}

interface Selection {
  from: number;
  to: number;
}

type LineChart = Chart<'line', Array<{ x: number; y: number | null }>>;

/** Charts zoomed together: a range selected on one applies to all. */
export interface ChartGroup {
  charts: Record<ChartName, LineChart>;
  markers: Marker[];
  /** The x range zoomed into, or null for everything. */
  range: [number, number] | null;
  /** The x range of the data. */
  full: [number, number] | null;
  zoom(range: [number, number] | null): void;
  setRuns(runs: RunColumns[]): void;
}

const selections = new WeakMap<Chart, Selection>();
const markersOf = new WeakMap<Chart, Marker[]>();

/** Draws the drag selection and the QPS-change markers. */
const overlay: Plugin<'line'> = {
  id: 'hbOverlay',
  afterDatasetsDraw(chart) {
    const { ctx, chartArea: a, scales } = chart;
    const x = scales.x;
    ctx.save();
    for (const m of markersOf.get(chart) ?? []) {
      const px = x.getPixelForValue(m.x);
      if (px < a.left || px > a.right) continue;
      ctx.strokeStyle = '#888';
      ctx.setLineDash(m.dash ?? [2, 3]);
      ctx.beginPath();
      ctx.moveTo(px, a.top);
      ctx.lineTo(px, a.bottom);
      ctx.stroke();
      ctx.fillStyle = '#555';
      ctx.font = '11px system-ui, sans-serif';
      ctx.fillText(m.label, Math.min(px + 3, a.right - ctx.measureText(m.label).width), a.top + 11);
    }
    const sel = selections.get(chart);
    if (sel) {
      ctx.fillStyle = 'rgba(31, 119, 180, 0.15)';
      const left = Math.max(a.left, Math.min(sel.from, sel.to));
      const right = Math.min(a.right, Math.max(sel.from, sel.to));
      ctx.fillRect(left, a.top, right - left, a.bottom - a.top);
    }
    ctx.restore();
  },
};

function hhmmss(epochSecond: number): string {
  return new Date(epochSecond * 1000).toISOString().slice(11, 19);
}

/**
 * Creates the six charts in `container` (one card each). `zero` is the epoch second of x = 0, shown
 * in the tooltip title; null when the runs have different zeros.
 */
export function mountCharts(container: HTMLElement, o: { xTitle: string; zero: number | null; markers?: Marker[]; height?: number }): ChartGroup {
  const charts = {} as ChartGroup['charts'];
  const group: ChartGroup = {
    charts,
    markers: o.markers ?? [],
    range: null,
    full: null,
    zoom(range) {
      group.range = range;
      showRange();
      container.dispatchEvent(new CustomEvent('hb-zoom', { detail: range }));
    },
    setRuns(runs) {
      const xs = runs.flatMap((r) => (r.x.length ? [r.x[0], r.x[r.x.length - 1]] : []));
      group.full = xs.length ? [Math.min(...xs), Math.max(...xs)] : null;
      for (const def of CHART_DEFS) charts[def.name].data.datasets = runs.flatMap((r) => lineDatasets(def, r.x, r.charts[def.name], r.variant));
      showRange();
    },
  };
  /** Every chart shows the zoomed range, else exactly the data's. */
  const showRange = () => {
    const r = group.range ?? group.full;
    for (const c of Object.values(charts)) {
      const x = c.options.scales!.x!;
      x.min = r ? r[0] : undefined;
      x.max = r ? r[1] : undefined;
      c.update('none');
    }
  };
  for (const def of CHART_DEFS) {
    const card = document.createElement('div');
    card.className = 'card';
    const box = document.createElement('div');
    box.style.position = 'relative';
    box.style.height = `${o.height ?? 280}px`;
    const canvas = document.createElement('canvas');
    canvas.id = 'chart-' + def.name;
    box.appendChild(canvas);
    card.appendChild(box);
    container.appendChild(card);
    const base = chartOptions(def, { title: def.title, xTitle: o.xTitle });
    const chart = new Chart(canvas, {
      type: 'line',
      data: { datasets: [] },
      plugins: [overlay],
      options: {
        ...base,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        normalized: true,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        plugins: {
          ...base.plugins,
          tooltip: {
            callbacks: {
              title: (items) => {
                const x = items[0]?.parsed.x;
                if (x === undefined || x === null) return '';
                return `second ${x}` + (o.zero === null ? '' : ` (${hhmmss(o.zero + x)} UTC)`);
              },
            },
          },
        },
      },
    }) as unknown as LineChart;
    markersOf.set(chart, group.markers);
    charts[def.name] = chart;
    dragToZoom(canvas, chart, group);
  }
  return group;
}

/** Drag across a chart to show that range on every chart of the group; double-click shows all. */
function dragToZoom(canvas: HTMLCanvasElement, chart: LineChart, group: ChartGroup): void {
  let sel: Selection | null = null;
  const px = (e: MouseEvent) => e.clientX - canvas.getBoundingClientRect().left;
  canvas.addEventListener('mousedown', (e) => {
    const a = chart.chartArea;
    const x = px(e);
    if (e.button !== 0 || x < a.left || x > a.right) return;
    sel = { from: x, to: x };
    e.preventDefault();
  });
  window.addEventListener('mousemove', (e) => {
    if (!sel) return;
    sel.to = px(e);
    selections.set(chart, sel);
    chart.draw();
  });
  window.addEventListener('mouseup', () => {
    if (!sel) return;
    const { from, to } = sel;
    sel = null;
    selections.delete(chart);
    if (Math.abs(to - from) < 5) return chart.draw();
    const scale = chart.scales.x;
    const a = scale.getValueForPixel(Math.min(from, to))!;
    const b = scale.getValueForPixel(Math.max(from, to))!;
    group.zoom([Math.floor(a), Math.ceil(b)]);
  });
  canvas.addEventListener('dblclick', () => group.zoom(null));
}

/** The data report.html inlines (controller/report.ts writes it). */
export interface ReportData {
  xTitle: string;
  /** Epoch second of x = 0, or null when the runs have different zeros (compare). */
  zero: number | null;
  runs: Array<Columns & { id: string; markers: Marker[] }>;
}

const COMPARE: Variant[] = [{}, { dash: [2, 3], alpha: 'aa' }];

/** Draws report.html's charts from its inline data (#hb-data) into #charts. */
export function report(): void {
  const data = JSON.parse(document.getElementById('hb-data')!.textContent!) as ReportData;
  const two = data.runs.length > 1;
  const markers = data.runs.flatMap((r, i) => r.markers.map((m) => ({ ...m, label: two ? `${m.label} (${i ? 'B' : 'A'})` : m.label, dash: i ? [1, 4] : [4, 3] })));
  const group = mountCharts(document.getElementById('charts')!, { xTitle: data.xTitle, zero: data.zero, markers });
  group.setRuns(data.runs.map((r, i) => ({ ...r, variant: two ? { ...COMPARE[i], suffix: `(${i ? 'B' : 'A'})` } : undefined })));
  const shown = document.getElementById('range');
  const reset = document.getElementById('reset');
  document.getElementById('charts')!.addEventListener('hb-zoom', (e) => {
    const r = (e as CustomEvent<[number, number] | null>).detail;
    if (shown) shown.textContent = r ? `seconds ${r[0]} to ${r[1]}` : 'the whole run';
    if (reset) reset.hidden = !r;
  });
  reset?.addEventListener('click', () => group.zoom(null));
  (window as unknown as { hb: unknown }).hb = { charts: group.charts, group, data, ready: true };
}

export { Chart, CHART_DEFS, columnsOf };
