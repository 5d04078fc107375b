// Series -> Chart.js: the datasets and the axes of one chart, the same for the PNGs (Node), the
// live dashboard and report.html (both in the browser, bundled from controller/web/client.ts).
import type { ChartDef } from './chart-defs.ts';

/** How a run's lines differ from another run's on the same chart (report --compare). */
export interface Variant {
  /** Appended to every label, e.g. the run id. */
  suffix?: string;
  /** Dash pattern for every line of this run (otherwise each line's own). */
  dash?: number[];
  /** Two hex digits of opacity appended to the colours. */
  alpha?: string;
}

export interface Point {
  x: number;
  y: number | null;
}

/** One dataset per line of `def`: points (x, y) from aligned columns; null leaves a gap. */
export function lineDatasets(def: ChartDef, x: readonly number[], ys: ReadonlyArray<ReadonlyArray<number | null>>, v: Variant = {}) {
  return def.lines.map((l, i) => {
    const col = ys[i] ?? [];
    const data: Point[] = new Array(x.length);
    for (let k = 0; k < x.length; k++) data[k] = { x: x[k], y: col[k] ?? null };
    const color = l.color + (v.alpha ?? '');
    return {
      label: v.suffix ? `${l.label} ${v.suffix}` : l.label,
      data,
      borderColor: color,
      backgroundColor: color,
      borderWidth: 2,
      borderDash: v.dash ?? (l.dashed ? [6, 4] : undefined),
      pointRadius: 0,
      stepped: l.stepped ? ('middle' as const) : false,
      spanGaps: false,
    };
  });
}

/** Title, legend and the two axes of a chart (x: seconds, y: from zero). */
export function chartOptions(def: ChartDef, o: { title: string; xTitle: string; titleSize?: number }) {
  return {
    animation: false as const,
    plugins: {
      title: { display: true, text: o.title, font: { size: o.titleSize ?? 14 } },
      legend: { display: true, position: 'top' as const },
    },
    scales: {
      x: { type: 'linear' as const, title: { display: true, text: o.xTitle }, ticks: { precision: 0 } },
      y: { beginAtZero: true, title: { display: true, text: def.yTitle } },
    },
  };
}
