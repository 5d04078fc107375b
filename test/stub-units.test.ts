import test from 'ava';
import { share, cumulativeQuota } from '../common/split.ts';
import { amountOf, setOf } from '../stub/envelopes.ts';
import { capOf, ownerOfSet, ownerOfUser, setsOf } from '../stub/sets.ts';
import { SentLedger, pickUsers } from '../stub/ledger.ts';
import { RatePacer } from '../stub/pacer.ts';
import { U32Queue } from '../stub/queue.ts';
import { SecondStore } from '../stub/store.ts';
import { F, N_FIELDS } from '../stub/fields.ts';
import { StubCore } from '../stub/core.ts';
import type { ToWorker, WorkerLedger } from '../stub/ipc.ts';

function seeded(seed: number): () => number {
  return () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

test('split: shares sum exactly to the total', (t) => {
  for (const [total, parts] of [[65000, 3], [7, 10], [0, 4], [1_020_000, 17]]) {
    let sum = 0;
    for (let i = 0; i < parts; i++) sum += share(total, parts, i);
    t.is(sum, total);
  }
  t.is(cumulativeQuota(7, 10, 9), 7);
});

test('queue: FIFO across growth', (t) => {
  const q = new U32Queue(2);
  for (let i = 1; i <= 100; i++) q.push(i);
  const out: number[] = [];
  for (let i = 0; i < 50; i++) out.push(q.shift());
  for (let i = 101; i <= 130; i++) q.push(i);
  while (q.length) out.push(q.shift());
  t.deepEqual(out, Array.from({ length: 130 }, (_, i) => i + 1));
  t.is(q.shift(), -1);
});

test('envelopes: ids deal round-robin over SETs; amounts are 1..20000', (t) => {
  t.deepEqual([1, 2, 3, 4, 5].map((id) => setOf(id, 4)), [0, 1, 2, 3, 0]);
  for (let id = 1; id < 10000; id++) {
    const a = amountOf(id);
    if (a < 1 || a > 20000) t.fail(`amount ${a}`);
  }
  t.is(amountOf(77), amountOf(77));
});

test('sets: every SET has exactly one owner, a user is served where its SET lives, caps sum to --max-qps', (t) => {
  for (const [sets, workers] of [[256, 64], [256, 3], [7, 7], [5, 2], [1, 1]]) {
    const owned = Array.from({ length: workers }, (_, w) => setsOf(w, sets, workers));
    t.deepEqual(owned.flat().sort((a, b) => a - b), Array.from({ length: sets }, (_, s) => s), `${sets} SETs over ${workers} workers`);
    for (let w = 0; w < workers; w++) for (const s of owned[w]) if (ownerOfSet(s, workers) !== w) t.fail(`SET ${s}`);
    for (let u = 0; u < 3 * sets; u += 7) if (!owned[ownerOfUser(u, sets, workers)].includes(u % sets)) t.fail(`user ${u}`);
    let caps = 0;
    for (let w = 0; w < workers; w++) caps += capOf(w, 65000, sets, workers);
    t.is(caps, 65000);
  }
  t.is(setsOf(1, 256, 64).length, 4);
  t.is(ownerOfUser(1000, 256, 64), (1000 % 256) % 64);
});

test('ledger: portions sum exactly, only named users claim, each once', (t) => {
  const rnd = seeded(7);
  const ledger = new SentLedger(rnd);
  for (let i = 0; i < 2000; i++) {
    const amount = 3 + Math.floor(rnd() * 100000);
    const users = pickUsers(3, 0, 50, rnd);
    const id = ledger.create(amount, users);
    t.is(ledger.claim(id, 51), 0, 'a user not named gets nothing');
    let sum = 0;
    for (const u of [users[2], users[0], users[1]]) {
      const p = ledger.claim(id, u);
      if (p < 1) t.fail(`portion ${p}`);
      sum += p;
      t.is(ledger.claim(id, u), 0, 'no double claim');
    }
    if (sum !== amount) t.fail(`portions ${sum} != ${amount}`);
  }
  const totals = ledger.totals();
  t.is(totals.claimedAmount, totals.sentAmount);
  t.is(totals.remainingAmount, 0);
  t.is(totals.open, 0);
  t.is(ledger.openAmount(), 0);
});

test('ledger: partly claimed envelopes keep the remainder open', (t) => {
  const ledger = new SentLedger(seeded(1));
  const id = ledger.create(100, [1, 2, 3]);
  const p = ledger.claim(id, 2);
  t.true(p >= 1 && p <= 98);
  t.is(ledger.openAmount(), 100 - p);
  t.is(ledger.totals().remainingAmount, 100 - p);
  t.throws(() => ledger.create(2, [1, 2, 3]), { message: /cannot give 3 users a cent each/ });
});

test('pickUsers: distinct, in range', (t) => {
  const rnd = seeded(3);
  for (let i = 0; i < 500; i++) {
    const u = pickUsers(3, 10, 12, rnd);
    t.deepEqual([...u].sort(), [10, 11, 12]);
  }
  t.throws(() => pickUsers(3, 1, 2), { message: /cannot pick 3 distinct users from 2/ });
});

test('pacer: exact per-second counts from ticks with an injected clock', (t) => {
  const p = new RatePacer(7, 100, 1000);
  t.is(p.due(999_950), 0, 'nothing before the start second');
  const perSecond = new Map<number, number>();
  for (let ms = 1_000_000; ms < 1_005_000; ms += 100) {
    const s = Math.floor(ms / 1000);
    perSecond.set(s, (perSecond.get(s) ?? 0) + p.due(ms + 3));
  }
  t.deepEqual([...perSecond.values()], [7, 7, 7, 7, 7]);
  t.is(p.missed, 0);
});

test('pacer: the whole quota is due by 700 ms, so late ticks still complete their second', (t) => {
  const p = new RatePacer(40, 1000, 1000);
  t.is(p.due(1_000_050), 5);
  t.is(p.due(1_000_650), 35, 'a tick at 650 ms catches up on everything');
  t.is(p.due(1_000_990), 0);
  t.is(p.missed, 0);
});

test('pacer: a stall counts missed instead of emitting late, and total bounds it', (t) => {
  const p = new RatePacer(10, 35, 1000);
  t.is(p.due(1_000_050), 1);
  t.is(p.due(1_000_950), 9);
  // stalled through second 1001 entirely
  t.is(p.due(1_002_050), 1);
  t.is(p.missed, 10);
  t.is(p.due(1_002_999), 9);
  t.is(p.due(1_003_999), 5, 'total caps the last second');
  t.true(p.finished);
  t.is(p.emitted + p.missed, 35);
});

test('store: merges counters per second and fills gaps with zeros', (t) => {
  const s = new SecondStore(10, 100);
  const c = new Array(N_FIELDS).fill(0);
  c[F.shakes] = 5;
  s.add(101, c);
  s.add(101, c);
  s.addField(103, F.won, 2);
  s.add(99, c); // before start: ignored
  const r = s.range(100, 103);
  t.deepEqual(r.map((e) => e.second), [100, 101, 102, 103]);
  t.deepEqual(r.map((e) => e.shakes), [0, 10, 0, 0]);
  t.is(r[3].won, 2);
  t.is(s.totals[F.shakes], 10);
  s.addField(113, F.won, 1); // reuses 103's slot
  t.is(s.range(113, 113)[0].won, 1);
  t.is(s.range(103, 103).length, 0, 'seconds older than the history are gone');
});

/** A worker as the primary sees it: keeps the generated ids of its SETs, wins some, answers audits. */
class FakeWorker {
  readonly queue: number[] = [];
  ledger: WorkerLedger = { received: 0, receivedAmount: 0, won: 0, wonAmount: 0, queued: 0, queuedAmount: 0 };
  core!: StubCore;
  constructor(readonly index: number, readonly sets: number, readonly workers: number) {}
  port() {
    return {
      pid: 1000 + this.index,
      send: (m: ToWorker) => {
        if (m.t === 'gen') {
          for (let id = m.first; id < m.first + m.count; id++) {
            if (ownerOfSet(setOf(id, this.sets), this.workers) !== this.index) continue;
            this.queue.push(id);
            this.ledger.received++;
            this.ledger.receivedAmount += amountOf(id);
            this.ledger.queued++;
            this.ledger.queuedAmount += amountOf(id);
          }
        }
        if (m.t === 'audit') this.core.fromWorker(this.index, { t: 'audit', req: m.req, ledger: { ...this.ledger } });
      },
    };
  }
  win(n: number): void {
    for (const id of this.queue.splice(0, n)) {
      this.ledger.won++;
      this.ledger.wonAmount += amountOf(id);
      this.ledger.queued--;
      this.ledger.queuedAmount -= amountOf(id);
    }
  }
  report(): void {
    this.core.fromWorker(this.index, { t: 'sec', records: [], upTo: 0, connections: 0, ledger: { ...this.ledger }, handedOver: 0, adopted: 0 });
  }
}

test('core: /audit reconciles after a worker dies, keeps what it reported won, and won never goes down', async (t) => {
  let now = 1_700_000_000_000;
  const core = new StubCore({ workers: 2, sets: 8, history: 60, iface: 'none', clock: () => now });
  const fakes = [0, 1].map((i) => new FakeWorker(i, 8, 2));
  for (const f of fakes) {
    f.core = core;
    core.workerUp(f.index, f.port());
  }
  core.setGenerator({ rate: 400, total: 400 });
  for (let i = 0; i < 20; i++) {
    now += 100;
    core.tick();
  }
  t.is(fakes[0].ledger.received + fakes[1].ledger.received, 400);
  fakes[0].win(50);
  fakes[1].win(70);
  for (const f of fakes) f.report();
  fakes[1].win(5); // won after its last report: cannot be told apart from lost once it dies
  const before = (await core.audit()).generator;
  t.is(before.won, 125);
  t.true(before.reconciles);

  core.workerDown(1);
  const after = (await core.audit()).generator;
  t.is(after.won, 50 + 70, 'the dead worker\'s reported wins stay won');
  t.is(after.lostWithWorkers, fakes[1].ledger.received - 70);
  t.is(after.inQueues, fakes[0].ledger.queued);
  t.true(after.reconciles, JSON.stringify(after));

  // Its replacement starts empty; generated ids keep flowing to it and the audit still adds up.
  const fresh = new FakeWorker(1, 8, 2);
  fresh.core = core;
  core.workerUp(1, fresh.port());
  core.setGenerator({ rate: 200, total: 200 });
  for (let i = 0; i < 20; i++) {
    now += 100;
    core.tick();
  }
  fresh.win(10);
  fresh.report();
  const later = (await core.audit()).generator;
  t.is(later.generated, 600);
  t.is(later.won, 50 + 70 + 10);
  t.true(later.reconciles, JSON.stringify(later));
});
