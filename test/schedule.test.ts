import test from 'ava';
import {
  SPREAD_MS,
  addChange,
  changeAt,
  phasesToChanges,
  countFiring,
  fires,
  fleetCount,
  moduloCount,
  moduloExact,
  moduloRate,
  mulMod,
  offsetMs,
  permutation,
  permute,
  qpsAt,
  secondKey,
  windowBase,
} from '../common/schedule.ts';

test('mulMod is exact for 32-bit operands', (t) => {
  const m = 4294967291;
  const a = 4294967290;
  const b = 4294967289;
  t.is(BigInt(mulMod(a, b, m)), (BigInt(a) * BigInt(b)) % BigInt(m));
  t.is(mulMod(123456, 654321, 1_000_003), (123456 * 654321) % 1_000_003);
});

test('permutation is a bijection of [0, n) that separates neighbours', (t) => {
  for (const n of [1, 2, 3, 10, 97, 1000, 3000, 1_020_000]) {
    const p = permutation(n);
    const seen = new Uint8Array(n);
    for (let u = 0; u < n; u++) seen[permute(p, u)]++;
    t.true(seen.every((x) => x === 1), `n=${n}`);
  }
  const p = permutation(1000);
  t.true(Math.abs(permute(p, 1) - permute(p, 0)) > 10);
});

test('window rule: the fleet sum is exactly Q in every second, for any Q', (t) => {
  const n = 1000;
  for (const q of [1, 7, 300, 333, 999, 1000]) {
    for (const s of [0, 1, 2, 5, 1_795_448_587]) {
      t.is(countFiring('window', n, q, s, 0, n), q, `q=${q} t=${s}`);
      // Split over three agents of uneven size: the shares still add up to Q.
      const parts = countFiring('window', n, q, s, 0, 123) + countFiring('window', n, q, s, 123, 500) + countFiring('window', n, q, s, 623, 377);
      t.is(parts, q);
    }
  }
});

test('window rule: every user fires Q/N of the seconds', (t) => {
  const n = 100;
  const q = 30;
  const p = permutation(n);
  const counts = new Array(n).fill(0);
  for (let s = 0; s < 10; s++) {
    const key = secondKey('window', n, q, s);
    for (let u = 0; u < n; u++) if (fires('window', n, q, key, permute(p, u))) counts[u]++;
  }
  t.true(counts.every((c) => c === 3));
});

test('window base is safe for huge t*Q', (t) => {
  const n = 1_020_000;
  const q = 60_000;
  const s = 1_795_448_587;
  t.is(windowBase(n, q, s), Number((BigInt(s) * BigInt(q)) % BigInt(n)));
});

test('modulo rule: exact when Q divides N, otherwise the real rate is N / floor(N/Q)', (t) => {
  const n = 3000;
  for (const q of [300, 1000, 1500]) {
    t.true(moduloExact(n, q));
    for (let s = 0; s < 12; s++) t.is(countFiring('modulo', n, q, s, 0, n), q);
  }
  const q = 700; // g = 4: 750 users per second
  t.false(moduloExact(n, q));
  t.is(moduloRate(n, q), 750);
  let sum = 0;
  for (let s = 0; s < 8; s++) {
    const k = countFiring('modulo', n, q, s, 0, n);
    t.is(k, moduloCount(n, q, s));
    t.is(k, fleetCount('modulo', n, q, s));
    sum += k;
  }
  t.is(sum / 8, 750);
  // Uneven group: N=1000, Q=300 -> g=3: 334, 333, 333.
  t.deepEqual([0, 1, 2].map((s) => countFiring('modulo', 1000, 300, s, 0, 1000)), [334, 333, 333]);
});

test('QPS 0 fires nobody', (t) => {
  t.is(countFiring('window', 100, 0, 5, 0, 100), 0);
  t.is(countFiring('modulo', 100, 0, 5, 0, 100), 0);
});

test('spread offsets on a 10 ms grid are multiples of 10 in [0, 900) and use all 90 slots', (t) => {
  const slots = new Set<number>();
  for (let u = 0; u < 20000; u++) {
    const o = offsetMs('spread', u, 900, 10);
    if (o % 10 !== 0 || o < 0 || o >= 900) t.fail(`offset ${o}`);
    slots.add(o);
  }
  t.is(slots.size, 90);
  t.is(offsetMs('spread', 7, 50, 100), 0, 'a step wider than the window leaves one slot');
});

test('spread offsets lie in [0, 900) and cover the window; burst is 0', (t) => {
  const buckets = new Array(9).fill(0);
  for (let u = 0; u < 9000; u++) {
    const o = offsetMs('spread', u);
    t.true(o >= 0 && o < SPREAD_MS && Number.isInteger(o));
    buckets[Math.floor(o / 100)]++;
  }
  for (const b of buckets) t.true(b > 800 && b < 1200, `bucket ${b}`);
  t.is(offsetMs('burst', 12345), 0);
});

test('QPS timeline: changes take effect at their second; a new change drops later ones', (t) => {
  let c = [{ at: 0, qps: 10 }];
  c = addChange(c, { at: 100, qps: 20 });
  c = addChange(c, { at: 200, qps: 30 });
  t.is(qpsAt(c, 99), 10);
  t.is(qpsAt(c, 100), 20);
  t.is(qpsAt(c, 250), 30);
  c = addChange(c, { at: 150, qps: 5 });
  t.is(qpsAt(c, 250), 5);
  t.is(qpsAt(c, 120), 20);
});

test('schedule: phases become one QPS timeline; the change in effect is the last one due', (t) => {
  const changes = phasesToChanges([
    { qps: 20, from: 110, to: 120 },
    { qps: 10, from: 100, to: 110 },
    { qps: 5, from: 130, to: 131 },
  ]);
  t.deepEqual(changes, [
    { at: 100, qps: 10 },
    { at: 110, qps: 20 },
    { at: 120, qps: 0 },
    { at: 130, qps: 5 },
    { at: 131, qps: 0 },
  ]);
  t.deepEqual([99, 100, 109, 110, 119, 120, 129, 130, 131].map((s) => qpsAt(changes, s)), [0, 10, 10, 20, 20, 0, 0, 5, 0]);
  t.is(changeAt(changes, 99), undefined);
  t.deepEqual(changeAt(changes, 125), { at: 120, qps: 0 });
});
