import test from 'ava';
import { Histogram } from '../common/histogram.ts';
import { PromText, snakeCase } from '../common/prometheus.ts';

test('prometheus: gauges, counters ending in _total, NaN; HELP and TYPE before each sample', (t) => {
  const text = new PromText().gauge('x_seconds', 'A gauge.', 0.25).counter('y_total', 'A counter.', 3).gauge('z_seconds', 'Not known.', NaN).text();
  t.is(text, '# HELP x_seconds A gauge.\n# TYPE x_seconds gauge\nx_seconds 0.25\n# HELP y_total A counter.\n# TYPE y_total counter\ny_total 3\n# HELP z_seconds Not known.\n# TYPE z_seconds gauge\nz_seconds NaN\n');
  t.throws(() => new PromText().counter('y', 'no suffix', 1), { message: /must end in _total/ });
  t.is(snakeCase('claimedAmount'), 'claimed_amount');
});

test('prometheus: a histogram in seconds from microsecond values: cumulative buckets, +Inf, sum and count', (t) => {
  const h = new Histogram();
  const values = [50, 80, 400, 900, 1_900, 40_000, 700_000, 3_000_000];
  for (const v of values) h.record(v);
  const text = new PromText().histogram('lat_seconds', 'Latency.', h, 1e-6, [0.0001, 0.001, 0.002, 0.05, 1]).text();
  const lines = text.trim().split('\n');
  t.is(lines[0], '# HELP lat_seconds Latency.');
  t.is(lines[1], '# TYPE lat_seconds histogram');
  t.deepEqual(lines.slice(2, 8), [
    'lat_seconds_bucket{le="0.0001"} 2',
    'lat_seconds_bucket{le="0.001"} 4',
    'lat_seconds_bucket{le="0.002"} 5',
    'lat_seconds_bucket{le="0.05"} 6',
    'lat_seconds_bucket{le="1"} 7',
    'lat_seconds_bucket{le="+Inf"} 8',
  ]);
  t.is(lines[9], 'lat_seconds_count 8');
  const sum = Number(/^lat_seconds_sum (\S+)$/.exec(lines[8])?.[1]);
  const exact = values.reduce((a, b) => a + b, 0) / 1e6;
  t.true(Math.abs(sum - exact) / exact < 0.008, `sum ${sum} vs ${exact}`);
  const empty = new PromText().histogram('e_seconds', 'Empty.', new Histogram(), 1e-6, [1]).text();
  t.true(empty.endsWith('e_seconds_bucket{le="1"} 0\ne_seconds_bucket{le="+Inf"} 0\ne_seconds_sum 0\ne_seconds_count 0\n'));
});
