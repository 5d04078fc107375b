import test from 'ava';
import { BUCKETS, Histogram, bucketOf, highOf, lowOf } from '../common/histogram.ts';

test('buckets are contiguous and monotonic, relative width <= 1/64', (t) => {
  let prevHigh = -1;
  for (let b = 0; b < BUCKETS; b++) {
    t.is(lowOf(b), prevHigh + 1);
    t.true(highOf(b) >= lowOf(b));
    if (lowOf(b) >= 128) t.true((highOf(b) - lowOf(b) + 1) / lowOf(b) <= 1 / 64 + 1e-12);
    prevHigh = highOf(b);
  }
  t.is(prevHigh, 0xffffffff);
  for (const v of [0, 1, 127, 128, 129, 1000, 65535, 1e6, 2 ** 31, 2 ** 32 - 1]) {
    const b = bucketOf(v);
    t.true(lowOf(b) <= v && v <= highOf(b), `v=${v}`);
  }
  t.is(bucketOf(2 ** 40), BUCKETS - 1);
});

test('percentiles within one bucket of the truth', (t) => {
  const h = new Histogram();
  for (let v = 1; v <= 100_000; v++) h.record(v);
  t.is(h.total, 100_000);
  t.is(h.max, 100_000);
  for (const p of [50, 90, 99, 99.9]) {
    const want = p * 1000;
    const got = h.percentile(p);
    t.true(Math.abs(got - want) / want < 0.02, `p${p}: ${got}`);
  }
  t.is(h.percentile(100), 100_000);
  t.is(new Histogram().percentile(50), 0);
});

test('encode/decode round trip and merge', (t) => {
  const a = new Histogram();
  const b = new Histogram();
  for (let i = 0; i < 1000; i++) a.record(i * 37);
  for (let i = 0; i < 500; i++) b.record(1e6 + i * 1000);
  const a2 = Histogram.decode(a.encode());
  t.deepEqual([...a2.counts], [...a.counts]);
  t.is(a2.total, a.total);
  t.is(a2.max, a.max);
  t.is(a2.min, a.min);
  const m = Histogram.decode(a.encode()).merge(Histogram.decode(b.encode()));
  t.is(m.total, 1500);
  t.is(m.max, b.max);
  t.is(m.min, 0);
  t.true(m.percentile(90) >= 1e6);
  const empty = Histogram.decode(new Histogram().encode());
  t.is(empty.total, 0);
  t.throws(() => Histogram.decode('nope'));
  t.throws(() => Histogram.decode('h1:' + Buffer.from([0x80]).toString('base64')));
});
