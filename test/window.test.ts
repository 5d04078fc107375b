import test from 'ava';
import { ConnectWindow } from '../agent/window.ts';

test('window: slow start doubles per round of quick logins, then grows by one per round', (t) => {
  const w = new ConnectWindow({ max: 512, targetMs: 500, initial: 4 });
  let now = 0;
  const round = () => {
    const n = w.limit();
    for (let i = 0; i < n; i++) w.succeeded((now += 1), 10);
  };
  round();
  t.is(w.limit(), 8);
  round();
  t.is(w.limit(), 16);
  w.failed((now += 1));
  t.is(w.limit(), 8, 'a failure halves it and ends slow start');
  round();
  t.true(w.size > 8.9 && w.size < 9, `then about +1 per round (${w.size})`);
  for (let k = 0; k < 9; k++) round();
  t.true(w.limit() >= 16 && w.limit() <= 18, `ten rounds add about ten (${w.size})`);
});

test('window: cuts once per target interval, never below 1 or above max', (t) => {
  const w = new ConnectWindow({ max: 20, targetMs: 500, initial: 16 });
  w.failed(1000);
  w.failed(1001);
  w.failed(1400);
  t.is(w.limit(), 8, 'a burst of failures within one interval counts once');
  w.failed(1600);
  t.is(w.limit(), 4);
  for (let k = 0; k < 10; k++) w.failed(2000 + k * 600);
  t.is(w.limit(), 1);
  for (let k = 0; k < 10_000; k++) w.succeeded(10_000 + k, 5);
  t.is(w.limit(), 20, 'capped at max');
});

test('window: logins slower than the target shrink it; the target follows the handshake time-out', (t) => {
  const w = new ConnectWindow({ max: 512, targetMs: ConnectWindow.targetFor(10_000), initial: 100 });
  t.is(w.targetMs, 500);
  w.succeeded(0, 400);
  t.is(w.limit(), 101);
  w.succeeded(10, 900);
  t.is(w.limit(), 75, 'x 0.75 on a slow login');
  w.succeeded(20, 900);
  t.is(w.limit(), 75, 'within the same interval: no second cut');
  w.succeeded(600, 900);
  t.is(w.limit(), 56);
  t.is(ConnectWindow.targetFor(1000), 100);
  t.is(ConnectWindow.targetFor(600_000), 1000);
});
