// Prometheus text exposition (format 0.0.4) for the stub's and the agent's GET /metrics: one
// writer, names in base units (seconds, not milliseconds), counters ending in _total, and real
// histograms (cumulative _bucket{le}, _sum, _count) built from the HDR-style histogram of histogram.ts.
import { BUCKETS, highOf, lowOf, type Histogram } from './histogram.ts';

export const CONTENT_TYPE = 'text/plain; version=0.0.4';

/** `claimedAmount` -> `claimed_amount`. */
export function snakeCase(field: string): string {
  return field.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export class PromText {
  private readonly lines: string[] = [];

  private head(name: string, type: string, help: string): void {
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
  }

  gauge(name: string, help: string, value: number): this {
    this.head(name, 'gauge', help);
    this.lines.push(`${name} ${num(value)}`);
    return this;
  }

  counter(name: string, help: string, value: number): this {
    if (!name.endsWith('_total')) throw new Error(`prometheus: counter ${name} must end in _total`);
    this.head(name, 'counter', help);
    this.lines.push(`${name} ${num(value)}`);
    return this;
  }

  /**
   * A histogram of `h` (values in `unit`s of a second: 1e-6 for microseconds) over the upper bounds
   * `les` (seconds, ascending). A bucket counts the values of every HDR bucket whose upper edge is
   * <= le, so it is exact to the recorded value except for values that sit in the one HDR bucket
   * straddling le (at most ~1.6 % of le wide). The sum is taken from the HDR buckets' midpoints
   * (each value within 0.8 %; exact below 128 units).
   */
  histogram(name: string, help: string, h: Histogram, unit: number, les: readonly number[]): this {
    this.head(name, 'histogram', help);
    let b = 0;
    let seen = 0;
    for (const le of les) {
      const limit = Math.round(le / unit);
      while (b < BUCKETS && highOf(b) <= limit) seen += h.counts[b++];
      this.lines.push(`${name}_bucket{le="${le}"} ${seen}`);
    }
    this.lines.push(`${name}_bucket{le="+Inf"} ${h.total}`);
    let sum = 0;
    for (let i = 0; i < BUCKETS; i++) if (h.counts[i]) sum += h.counts[i] * ((lowOf(i) + highOf(i)) / 2);
    this.lines.push(`${name}_sum ${num(sum * unit)}`, `${name}_count ${h.total}`);
    return this;
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }
}
