// The stub's primary-side state: the envelope generator and the sending service (paced per
// second), the sent-envelope ledger that answers claims, chat routing between workers, the merged
// per-second counters, NIC packets, and the audit. Workers reach it through WorkerPort messages.
import { HttpError, CodedError } from '../common/errors.ts';
import { finalAcross } from '../common/seconds.ts';
import { PromText, snakeCase } from '../common/prometheus.ts';
import { FIRST_GENERATED_ID, LAST_GENERATED_ID, amountOf, setOf } from './envelopes.ts';
import { F, FIELDS, type SecondStats } from './fields.ts';
import type { ToPrimary, ToWorker, WorkerLedger } from './ipc.ts';
import { SentLedger, pickUsers } from './ledger.ts';
import { readPackets } from './nic.ts';
import { RatePacer } from './pacer.ts';
import { SecondStore } from './store.ts';
import { ownerOfSet, ownerOfUser } from './sets.ts';

export interface WorkerPort {
  send(msg: ToWorker): void;
  pid: number;
}

interface Slot {
  index: number;
  port: WorkerPort | undefined;
  alive: boolean;
  pid: number;
  upTo: number;
  connections: number;
  ledger: WorkerLedger;
  restarts: number;
  /** Cumulative over the worker's lives: connections it released to their owner, adopted from others. */
  handedOver: number;
  adopted: number;
  /** The cumulative counts when the current life of the worker began. */
  base: { handedOver: number; adopted: number };
  /** Generator envelopes dispatched to this worker's SETs (exact). */
  dispatched: number;
  dispatchedAmount: number;
}

export interface CoreOptions {
  workers: number;
  sets: number;
  history: number;
  iface: string;
  clock?: () => number;
  random?: () => number;
}

export interface GeneratorRequest {
  rate: number;
  total: number;
}

export interface SenderRequest {
  rate: number;
  total: number;
  users: number;
  minUser: number;
  maxUser: number;
  amount: number;
}

const emptyLedger = (): WorkerLedger => ({ received: 0, receivedAmount: 0, won: 0, wonAmount: 0, queued: 0, queuedAmount: 0 });

export class StubCore {
  readonly store: SecondStore;
  readonly ledger: SentLedger;
  private readonly slots: Slot[];
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly startedAt: number;
  private generator: RatePacer | undefined;
  private sender: { pacer: RatePacer; req: SenderRequest } | undefined;
  private nextGenId = FIRST_GENERATED_ID;
  private generated = 0;
  private generatedAmount = 0;
  private lostWithWorkers = 0;
  private lostAmount = 0;
  /** What dead workers had reported won before they died: kept, so won never goes down. */
  private wonByDead = 0;
  private wonAmountByDead = 0;
  private deaths = 0;
  /** Released connections that found their owner down (closed: the client reconnects). */
  private handOversDropped = 0;
  private lastPackets: { rx: number; tx: number; second: number } | undefined;
  private nextReq = 1;
  private readonly audits = new Map<number, { want: Set<number>; got: Map<number, WorkerLedger>; done: () => void }>();

  constructor(private readonly opts: CoreOptions) {
    this.clock = opts.clock ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.startedAt = this.clock();
    this.store = new SecondStore(opts.history, Math.floor(this.startedAt / 1000));
    this.ledger = new SentLedger(this.random);
    this.slots = Array.from({ length: opts.workers }, (_, index) => ({
      index,
      port: undefined,
      alive: false,
      pid: 0,
      upTo: 0,
      connections: 0,
      ledger: emptyLedger(),
      restarts: 0,
      handedOver: 0,
      adopted: 0,
      base: { handedOver: 0, adopted: 0 },
      dispatched: 0,
      dispatchedAmount: 0,
    }));
  }

  private nowSecond(): number {
    return Math.floor(this.clock() / 1000);
  }

  // ---- workers -------------------------------------------------------------------------------

  /** Worker that owns user `user`'s SET and serves the user's connection. */
  ownerOf(user: number): number {
    return ownerOfUser(user, this.opts.sets, this.opts.workers);
  }

  isUp(index: number): boolean {
    return this.slots[index].alive;
  }

  /** A released connection could not go to its owner (down): closed, counted as an error. */
  handOverDropped(_from: number, _to: number): void {
    this.handOversDropped++;
    this.store.addField(this.nowSecond(), F.errors, 1);
  }

  workerUp(index: number, port: WorkerPort): void {
    const slot = this.slots[index];
    if (slot.port) slot.restarts++;
    slot.port = port;
    slot.pid = port.pid;
    slot.alive = true;
    slot.upTo = 0;
    slot.connections = 0;
    slot.ledger = emptyLedger();
    slot.base = { handedOver: slot.handedOver, adopted: slot.adopted };
    slot.dispatched = 0;
    slot.dispatchedAmount = 0;
  }

  /** A worker died: its connections are gone and the envelopes queued in it are lost (reported in the audit). */
  workerDown(index: number): void {
    const slot = this.slots[index];
    if (!slot.alive) return;
    slot.alive = false;
    slot.connections = 0;
    this.deaths++;
    // What it reported won stays won; what was dispatched to it and not reported won is lost
    // (won after its last report is counted lost too: nobody can tell it apart now).
    this.wonByDead += slot.ledger.won;
    this.wonAmountByDead += slot.ledger.wonAmount;
    this.lostWithWorkers += slot.dispatched - slot.ledger.won;
    this.lostAmount += slot.dispatchedAmount - slot.ledger.wonAmount;
    slot.ledger = emptyLedger();
    for (const [req, audit] of this.audits) {
      audit.want.delete(index);
      if (audit.want.size === 0) {
        this.audits.delete(req);
        audit.done();
      }
    }
  }

  fromWorker(index: number, msg: ToPrimary): void {
    const slot = this.slots[index];
    switch (msg.t) {
      case 'sec':
        for (const [second, counters] of msg.records) this.store.add(second, counters);
        slot.upTo = Math.max(slot.upTo, msg.upTo);
        slot.connections = msg.connections;
        slot.ledger = msg.ledger;
        slot.handedOver = slot.base.handedOver + msg.handedOver;
        slot.adopted = slot.base.adopted + msg.adopted;
        break;
      case 'claim': {
        const amount = this.ledger.claim(msg.id, msg.user);
        const s = this.nowSecond();
        this.store.addField(s, F.claims, 1);
        this.store.addField(s, F.claimedAmount, amount);
        slot.port?.send({ t: 'claimed', req: msg.req, id: msg.id, amount });
        break;
      }
      case 'chat': {
        // The addressee's connection can only be in the worker owning its SET.
        const owner = this.slots[this.ownerOf(msg.to)];
        if (owner.alive && owner.index !== index) owner.port?.send({ t: 'chat', from: msg.from, to: msg.to, text: msg.text });
        break;
      }
      case 'audit': {
        const audit = this.audits.get(msg.req);
        if (!audit) break;
        audit.got.set(index, msg.ledger);
        audit.want.delete(index);
        if (audit.want.size === 0) {
          this.audits.delete(msg.req);
          audit.done();
        }
        break;
      }
    }
  }

  // ---- generator and sending service -----------------------------------------------------------

  setGenerator(req: GeneratorRequest): ReturnType<RatePacer['status']> {
    const room = LAST_GENERATED_ID - this.nextGenId + 1;
    if (req.total > room) throw new CodedError(400, HttpError.BAD_REQUEST, `body/total must be <= ${room} (generator ids left in this run)`);
    this.generator = new RatePacer(req.rate, req.total, this.nowSecond() + 1);
    return this.generator.status();
  }

  setSender(req: SenderRequest): ReturnType<RatePacer['status']> & { users: number; minUser: number; maxUser: number; amount: number } {
    if (req.maxUser < req.minUser) throw new CodedError(400, HttpError.BAD_REQUEST, `body/maxUser (${req.maxUser}) must be >= body/minUser (${req.minUser})`);
    if (req.maxUser - req.minUser + 1 < req.users) {
      throw new CodedError(400, HttpError.BAD_REQUEST, `body/users (${req.users}) must be <= the ${req.maxUser - req.minUser + 1} users in [minUser, maxUser]`);
    }
    if (req.amount < req.users) throw new CodedError(400, HttpError.BAD_REQUEST, `body/amount (${req.amount} cents) must be >= body/users (${req.users}): one cent each at least`);
    this.sender = { pacer: new RatePacer(req.rate, req.total, this.nowSecond() + 1), req };
    return this.senderStatus()!;
  }

  private senderStatus() {
    if (!this.sender) return undefined;
    const { users, minUser, maxUser, amount } = this.sender.req;
    return { ...this.sender.pacer.status(), users, minUser, maxUser, amount };
  }

  /** Runs every 100 ms: emits the generator's and the sender's quota. */
  tick(): void {
    const now = this.clock();
    const s = Math.floor(now / 1000);
    if (this.generator) {
      const n = this.generator.due(now);
      if (n > 0) this.dispatch(n, s);
    }
    if (this.sender) {
      const n = this.sender.pacer.due(now);
      for (let i = 0; i < n; i++) this.send(s);
    }
  }

  private dispatch(count: number, second: number): void {
    const first = this.nextGenId;
    this.nextGenId += count;
    const { sets, workers } = this.opts;
    for (let id = first; id < first + count; id++) {
      const amount = amountOf(id);
      const slot = this.slots[ownerOfSet(setOf(id, sets), workers)];
      this.generated++;
      this.generatedAmount += amount;
      if (slot.alive) {
        slot.dispatched++;
        slot.dispatchedAmount += amount;
      } else {
        this.lostWithWorkers++;
        this.lostAmount += amount;
      }
    }
    this.store.addField(second, F.generated, count);
    // Only the workers owning SETs of these ids hear of them (a tick's ids often touch few SETs).
    const owners = new Set<number>();
    for (let id = first; id < first + Math.min(count, sets); id++) owners.add(ownerOfSet(setOf(id, sets), workers));
    for (const i of owners) {
      const slot = this.slots[i];
      if (slot.alive) slot.port?.send({ t: 'gen', first, count });
    }
  }

  private send(second: number): void {
    const req = this.sender!.req;
    const users = pickUsers(req.users, req.minUser, req.maxUser, this.random);
    const id = this.ledger.create(req.amount, users);
    this.store.addField(second, F.sent, 1);
    // Only the workers owning the named users' SETs can hold their connections.
    const owners = new Set(users.map((u) => this.ownerOf(u)));
    for (const i of owners) {
      const slot = this.slots[i];
      if (slot.alive) slot.port?.send({ t: 'notice', id, amount: req.amount, users });
    }
  }

  /** Runs once a second just after the boundary: packets of the NIC during the second that ended. */
  sampleNic(): void {
    const p = readPackets(this.opts.iface);
    const s = this.nowSecond();
    if (p && this.lastPackets && s === this.lastPackets.second + 1) {
      this.store.addField(s - 1, F.rxPackets, p.rx - this.lastPackets.rx);
      this.store.addField(s - 1, F.txPackets, p.tx - this.lastPackets.tx);
    }
    this.lastPackets = p ? { ...p, second: s } : undefined;
  }

  // ---- reports -------------------------------------------------------------------------------

  connections(): number {
    let n = 0;
    for (const slot of this.slots) if (slot.alive) n += slot.connections;
    return n;
  }

  /** Last second that every live worker has reported. */
  completedUpTo(): number {
    return finalAcross(
      this.nowSecond(),
      this.slots.filter((s) => s.alive).map((s) => s.upTo),
    );
  }

  stats(since?: number): { now: number; connections: number; seconds: SecondStats[] } {
    const upTo = this.completedUpTo();
    const from = since ?? upTo - 59;
    return { now: this.nowSecond(), connections: this.connections(), seconds: this.store.range(Math.max(from, upTo - 3599), upTo) };
  }

  health() {
    const workers = this.slots.map((s) => ({
      index: s.index,
      pid: s.pid,
      alive: s.alive,
      connections: s.connections,
      restarts: s.restarts,
      handedOver: s.handedOver,
      adopted: s.adopted,
    }));
    return {
      ok: workers.every((w) => w.alive),
      pid: process.pid,
      uptimeSeconds: Math.round((this.clock() - this.startedAt) / 1000),
      connections: this.connections(),
      workerDeaths: this.deaths,
      handOversDropped: this.handOversDropped,
      workers,
    };
  }

  /** Asks every live worker for its envelope ledger, then reconciles generator and sender totals. */
  async audit(timeoutMs = 3000) {
    const req = this.nextReq++;
    const want = new Set(this.slots.filter((s) => s.alive).map((s) => s.index));
    const got = new Map<number, WorkerLedger>();
    if (want.size > 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.audits.delete(req);
          reject(new CodedError(503, HttpError.UNAVAILABLE, `workers ${[...want].join(', ')} did not answer the audit within ${timeoutMs} ms`));
        }, timeoutMs);
        this.audits.set(req, {
          want,
          got,
          done: () => {
            clearTimeout(timer);
            resolve();
          },
        });
        for (const i of want) this.slots[i].port?.send({ t: 'audit', req });
      });
    }
    let won = this.wonByDead;
    let wonAmount = this.wonAmountByDead;
    let inQueues = 0;
    let inQueuesAmount = 0;
    for (const l of got.values()) {
      won += l.won;
      wonAmount += l.wonAmount;
      inQueues += l.queued;
      inQueuesAmount += l.queuedAmount;
    }
    const t = this.ledger.totals();
    const openAmount = this.ledger.openAmount();
    return {
      generator: {
        generated: this.generated,
        generatedAmount: this.generatedAmount,
        won,
        wonAmount,
        inQueues,
        inQueuesAmount,
        lostWithWorkers: this.lostWithWorkers,
        lostAmount: this.lostAmount,
        missed: this.generator?.missed ?? 0,
        reconciles: this.generated === won + inQueues + this.lostWithWorkers && this.generatedAmount === wonAmount + inQueuesAmount + this.lostAmount,
        status: this.generator?.status() ?? null,
      },
      sender: {
        ...t,
        openAmount,
        missed: this.sender?.pacer.missed ?? 0,
        reconciles: t.sentAmount === t.claimedAmount + openAmount,
        status: this.senderStatus() ?? null,
      },
      workerDeaths: this.deaths,
    };
  }

  metrics(): string {
    const p = new PromText();
    p.gauge('hongbao_stub_connections', 'Open connections (WebSocket and raw TCP).', this.connections());
    p.gauge('hongbao_stub_workers_alive', 'Worker processes alive.', this.slots.filter((s) => s.alive).length);
    p.counter('hongbao_stub_worker_deaths_total', 'Worker processes that died.', this.deaths);
    FIELDS.forEach((field, i) => p.counter(`hongbao_stub_${snakeCase(field)}_total`, `Sum of per-second ${field} over reported seconds.`, this.store.totals[i]));
    p.counter('hongbao_stub_envelopes_generated_total', 'Generator envelopes dispatched to SET queues.', this.generated);
    p.gauge('hongbao_stub_sent_remaining_cents', 'Cents not yet claimed in sent envelopes.', this.ledger.totals().remainingAmount);
    return p.text();
  }
}
