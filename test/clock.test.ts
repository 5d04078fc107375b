import test from 'ava';
import { SyncedClock, bestSample, ntpSample, parseNtpTarget, preciseClock, skewedClock, type NtpQuery } from '../common/clock.ts';

/** A fake world: `trueMs` is real time; the local clock is off by `skew`; queries take given round trips. */
function world(skew: number, rtts: number[]) {
  const w = { trueMs: 1_795_000_000_000, calls: 0 };
  const base = () => w.trueMs + skew;
  const query: NtpQuery = async () => {
    const rtt = rtts[w.calls++ % rtts.length];
    // Asymmetric path: the request takes 70 % of the round trip, the answer 30 %.
    w.trueMs += rtt * 0.7;
    const server = w.trueMs;
    w.trueMs += rtt * 0.3;
    return server;
  };
  return { w, base, query };
}

test('parseNtpTarget', (t) => {
  t.is(parseNtpTarget('off'), undefined);
  t.deepEqual(parseNtpTarget('127.0.0.1'), { host: '127.0.0.1', port: 123 });
  t.deepEqual(parseNtpTarget('ntp.example.org:12345'), { host: 'ntp.example.org', port: 12345 });
  t.throws(() => parseNtpTarget('a:b'));
  t.throws(() => parseNtpTarget('host:0'));
  t.throws(() => parseNtpTarget(''));
});

test('one sample: offset from the midpoint, bounded by half the round trip', async (t) => {
  const { base, query } = world(3000, [40]);
  const s = await ntpSample({ host: 'x', port: 1 }, base, query);
  t.is(s.rttMs, 40);
  t.true(Math.abs(s.offsetMs - -3000) <= s.rttMs / 2);
  t.is(s.offsetMs, -3000 + 8); // 70/30 asymmetry: 0.2 * 40 off the midpoint
});

test('lowest round trip wins; failures are skipped', async (t) => {
  const { w, base, query } = world(-2500, [80, 12, 4, 50]);
  let n = 0;
  const flaky: NtpQuery = (target, timeout) => (n++ === 1 ? Promise.reject(new Error('Timeout')) : query(target, timeout));
  const { best, errors } = await bestSample({ host: 'x', port: 1 }, base, 5, flaky);
  t.deepEqual(errors, ['Timeout']);
  t.is(best!.rttMs, 4);
  t.true(Math.abs(best!.offsetMs - 2500) <= 2);
  t.true(w.calls >= 4);
});

test('a hidden skew does not move the synchronised seconds', async (t) => {
  for (const skew of [3000, -3000, 1234.5, 0]) {
    const { w, base, query } = world(skew, [6, 2, 9]);
    const clock = new SyncedClock(base, { host: 'x', port: 1 }, { samples: 3, query });
    t.is(clock.status().synced, false);
    await clock.sync();
    const st = clock.status();
    t.true(st.synced);
    t.true(Math.abs(st.offsetMs + skew) <= st.uncertaintyMs + 1e-9, `skew ${skew}: offset ${st.offsetMs} +/- ${st.uncertaintyMs}`);
    for (const frac of [100, 400, 900]) {
      w.trueMs = 1_795_000_100_000 + frac;
      t.is(Math.floor(clock.now() / 1000), Math.floor(w.trueMs / 1000));
    }
  }
});

test('a resync with a much worse round trip keeps the better offset', async (t) => {
  const rtts = [2];
  const { base, query } = world(500, rtts);
  const clock = new SyncedClock(base, { host: 'x', port: 1 }, { samples: 1, query });
  await clock.sync();
  const first = clock.offsetMs;
  rtts[0] = 200;
  await clock.sync();
  t.is(clock.offsetMs, first);
  t.is(clock.status().syncs, 2);
});

test('--ntp off: offset 0, the status says the local clock is used', async (t) => {
  const clock = new SyncedClock(skewedClock(0), undefined);
  t.is(await clock.sync(), undefined);
  t.is(clock.offsetMs, 0);
  t.regex(clock.status().source, /local clock/);
  t.false(clock.status().synced);
  const skewed = skewedClock(5000);
  t.true(Math.abs(skewed() - Date.now() - 5000) < 50);
});

test('no answer: not synced, the error is kept', async (t) => {
  const clock = new SyncedClock(skewedClock(0), { host: 'x', port: 1 }, { samples: 2, query: () => Promise.reject(new Error('Timeout waiting')) });
  await clock.sync();
  t.false(clock.status().synced);
  t.is(clock.status().failures, 1);
  t.regex(clock.status().lastError ?? '', /Timeout/);
});

test('preciseClock: sub-ms resolution, stays within a few ms of Date.now(), carries the skew', (t) => {
  const c = preciseClock();
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) seen.add(c() % 1);
  t.true(seen.size > 10, 'fractional milliseconds');
  for (let i = 0; i < 5; i++) t.true(Math.abs(c() - Date.now()) <= 3.5);
  const s = preciseClock(3000);
  t.true(Math.abs(s() - Date.now() - 3000) <= 3.5);
  let prev = c();
  for (let i = 0; i < 10000; i++) {
    const v = c();
    t.true(v >= prev - 3.5); // monotonic except for a re-anchor of at most the drift bound
    prev = v;
  }
});
