// The six charts of a run (one definition for the PNGs, the live dashboard and report.html): which
// lines each draws and how a line's value is read from a second of the series. Pure code, no Node
// APIs: it is bundled into the browser script too (controller/web/client.ts).
import type { Row } from './timeline.ts';

export const CHART_NAMES = ['client-qps', 'server-qps', 'envelopes', 'connections', 'latency', 'pps'] as const;
export type ChartName = (typeof CHART_NAMES)[number];

export interface Line {
  label: string;
  color: string;
  values: (r: Row) => number | null | undefined;
  stepped?: boolean;
  dashed?: boolean;
}

export interface ChartDef {
  name: ChartName;
  title: string;
  yTitle: string;
  lines: Line[];
}

/** Rows as the browser gets them (series lines without the histogram). */
export type ChartRow = Omit<Row, 'hist'>;

export const CHART_DEFS: readonly ChartDef[] = [
  {
    name: 'client-qps',
    title: 'Client QPS: target vs sent vs answered',
    yTitle: 'shakes per second',
    lines: [
      { label: 'target', color: '#111111', values: (r) => r.targetQps, stepped: true, dashed: true },
      { label: 'sent', color: '#1f77b4', values: (r) => r.client.sent },
      { label: 'answered', color: '#2ca02c', values: (r) => r.client.answered, dashed: true },
      { label: 'missed', color: '#d62728', values: (r) => r.client.missed },
    ],
  },
  {
    name: 'server-qps',
    title: 'Server QPS (stub counters)',
    yTitle: 'per second',
    lines: [
      { label: 'shakes received', color: '#1f77b4', values: (r) => r.server?.shakes },
      { label: 'served (won + empty)', color: '#2ca02c', values: (r) => (r.server ? r.server.won + r.server.empty : null) },
      { label: 'overload', color: '#d62728', values: (r) => r.server?.overload },
      { label: 'errors', color: '#9467bd', values: (r) => r.server?.errors },
    ],
  },
  {
    name: 'envelopes',
    title: 'Envelopes per second',
    yTitle: 'envelopes per second',
    lines: [
      { label: 'generated', color: '#ff7f0e', values: (r) => r.server?.generated },
      { label: 'won by shaking', color: '#2ca02c', values: (r) => r.server?.won },
      { label: 'sent to 3 users', color: '#1f77b4', values: (r) => r.server?.sent },
      { label: 'claims', color: '#9467bd', values: (r) => r.server?.claims },
    ],
  },
  {
    name: 'connections',
    title: 'Connections',
    yTitle: 'open connections',
    lines: [
      { label: 'agents (logged in)', color: '#1f77b4', values: (r) => r.client.connections },
      { label: 'server', color: '#ff7f0e', values: (r) => r.server?.connections, dashed: true },
    ],
  },
  {
    name: 'latency',
    title: 'Latency from the scheduled instant to the reply (no coordinated omission)',
    yTitle: 'milliseconds',
    lines: [
      { label: 'p50', color: '#2ca02c', values: (r) => (r.client.answered ? r.client.p50Ms : null) },
      { label: 'p90', color: '#1f77b4', values: (r) => (r.client.answered ? r.client.p90Ms : null) },
      { label: 'p99', color: '#ff7f0e', values: (r) => (r.client.answered ? r.client.p99Ms : null) },
      { label: 'max', color: '#d62728', values: (r) => (r.client.answered ? r.client.maxMs : null), dashed: true },
    ],
  },
  {
    name: 'pps',
    title: 'Server NIC packets per second',
    yTitle: 'packets per second',
    lines: [
      { label: 'rx', color: '#1f77b4', values: (r) => r.server?.rxPackets },
      { label: 'tx', color: '#ff7f0e', values: (r) => r.server?.txPackets },
    ],
  },
];

/**
 * A series in columns: the x of every second (seconds since `zero`) and, per chart, one array of
 * values per line, aligned with x. The compact form report.html inlines (no object per second).
 */
export interface Columns {
  x: number[];
  charts: Record<ChartName, Array<Array<number | null>>>;
}

/** Rows (one per second, in order) to columns; x = second - zero. */
export function columnsOf(rows: readonly ChartRow[], zero: number): Columns {
  const charts = {} as Columns['charts'];
  for (const def of CHART_DEFS) charts[def.name] = def.lines.map((l) => rows.map((r) => l.values(r as Row) ?? null));
  return { x: rows.map((r) => r.second - zero), charts };
}
