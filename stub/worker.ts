// One stub worker: owns some SETs (stub/sets.ts) — their envelope queues and the
// connections of their users — and keeps per-second counters that it hands to the primary once
// each second is over. An acceptor worker also takes new connections off the shared port: when a
// login names a user of a SET owned elsewhere, the connection is released (its socket handle goes
// to the owning worker through the primary) and that worker adopts it and answers the login.
// Listeners are module-level functions; a connection's state lives on the socket under symbols.
import { ReadyState, type LiteConn, type LiteError, type LiteHandler, type MessageConn } from '../common/wslite.ts';
import { finalAtStartOf } from '../common/seconds.ts';
import { WireError, closeCodeFor, wireErrorName } from '../common/errors.ts';
import { Slab } from '../common/slab.ts';
import {
  Cmd,
  Frame,
  LOGIN_OK,
  ShakeResult,
  Size,
  chatSize,
  decode,
  encodeChat,
  encodeClaimReply,
  encodeError,
  encodeLoginReply,
  encodeNotice,
  encodeShakeReply,
  HEADER_BYTES,
  MAX_MESSAGE_BYTES,
} from '../common/wire.ts';
import { FIRST_SENT_ID, amountOf, setOf } from './envelopes.ts';
import { F, N_FIELDS } from './fields.ts';
import type { ToPrimary, ToWorker, WorkerLedger } from './ipc.ts';
import { U32Queue } from './queue.ts';
import { capOf, ownerOfSet, ownerOfUser } from './sets.ts';

const kUser = Symbol('hongbao.user');
const kWorker = Symbol('hongbao.worker');

interface StubSocket extends MessageConn {
  [kUser]: number;
  [kWorker]: StubWorker;
}

export interface WorkerConfig {
  /** 0-based worker index and worker count: which SETs this worker owns (sets.ts). */
  index: number;
  workers: number;
  sets: number;
  /** --max-qps: this worker answers its SETs' share of it per second before overload. */
  maxQps: number;
  clock?: () => number;
}

/** Where a released connection goes: the primary passes it to the worker owning the user's SET. */
export type HandOff = (user: number, handle: unknown, rest: Buffer | null, raw: boolean) => void;

const frame = new Frame();

export class StubWorker {
  readonly users = new Map<number, StubSocket>();
  connections = 0;
  /** Connections released to their SET's owner (this worker accepted them), and adopted here. */
  handedOver = 0;
  adopted = 0;
  /** Served shakes per second before overload: this worker's SETs' share of --max-qps. */
  readonly cap: number;
  private readonly queues: U32Queue[];
  private readonly clock: () => number;
  private readonly slab = new Slab();
  private rec = new Array<number>(N_FIELDS).fill(0);
  private recSecond = 0;
  private served = 0;
  private done: Array<[number, number[]]> = [];
  private readonly ledger: WorkerLedger = { received: 0, receivedAmount: 0, won: 0, wonAmount: 0, queued: 0, queuedAmount: 0 };
  private nextReq = 1;
  private readonly pendingClaims = new Map<number, StubSocket>();

  constructor(
    readonly config: WorkerConfig,
    private readonly toPrimary: (msg: ToPrimary) => void,
    /** Releases a connection whose user belongs to another worker's SET (absent: one worker owns all). */
    private readonly handOff?: HandOff,
  ) {
    // Queues exist for the SETs this worker owns only; the others stay empty forever.
    this.queues = Array.from({ length: config.sets }, (_, s) => new U32Queue(ownerOfSet(s, config.workers) === config.index ? 16 : 1));
    this.cap = capOf(config.index, config.maxQps, config.sets, config.workers);
    this.clock = config.clock ?? Date.now;
    this.recSecond = Math.floor(this.clock() / 1000);
  }

  /** Takes over a freshly opened connection (its events arrive through liteHandler). */
  attachLite(conn: LiteConn): void {
    const ws = conn as unknown as StubSocket;
    ws[kUser] = -1;
    ws[kWorker] = this;
    this.connections++;
  }

  /** A connection of user `user` released by another worker: log it in here, then read on. */
  adopt(conn: LiteConn, user: number, rest: Buffer | null): void {
    this.adopted++;
    const ws = conn as unknown as StubSocket;
    this.login(ws, user);
    if (rest !== null && ws[kUser] === user) conn.feed(rest, 0, rest.length);
  }

  /** Whether this worker owns user `user`'s SET (and so serves the user's connection). */
  owns(user: number): boolean {
    return ownerOfUser(user, this.config.sets, this.config.workers) === this.config.index;
  }

  /** Current epoch second, rolling the counters over when it changed. */
  private second(): number {
    const s = Math.floor(this.clock() / 1000);
    if (s > this.recSecond) {
      // A clock stepping back keeps counting into the current second rather than rewriting history.
      this.done.push([this.recSecond, this.rec]);
      this.rec = new Array<number>(N_FIELDS).fill(0);
      this.served = 0;
      this.recSecond = s;
    }
    return this.recSecond;
  }

  bump(field: number, n = 1): void {
    this.second();
    this.rec[field] += n;
  }

  /** Completed seconds since the last flush, for the primary. Called about once a second. */
  flush(): ToPrimary {
    const s = this.second();
    const records = this.done;
    this.done = [];
    return { t: 'sec', upTo: finalAtStartOf(s), records, connections: this.connections, ledger: { ...this.ledger }, handedOver: this.handedOver, adopted: this.adopted };
  }

  /** Handles a message from the primary. */
  receive(msg: ToWorker): void {
    switch (msg.t) {
      case 'gen':
        this.takeEnvelopes(msg.first, msg.count);
        break;
      case 'notice':
        this.deliverNotice(msg.id, msg.amount, msg.users);
        break;
      case 'claimed': {
        const ws = this.pendingClaims.get(msg.req);
        this.pendingClaims.delete(msg.req);
        if (ws && ws.readyState === ReadyState.OPEN) {
          const buf = this.out(Size.CLAIM_REPLY);
          encodeClaimReply(buf, 0, this.seconds(), msg.id, msg.amount);
          ws.send(buf);
        }
        break;
      }
      case 'chat':
        this.deliverChat(msg.from, msg.to, msg.text);
        break;
      case 'audit':
        this.toPrimary({ t: 'audit', req: msg.req, ledger: { ...this.ledger } });
        break;
    }
  }

  private takeEnvelopes(first: number, count: number): void {
    const { sets, workers, index } = this.config;
    for (let id = first; id < first + count; id++) {
      const set = setOf(id, sets);
      if (ownerOfSet(set, workers) !== index) continue;
      const amount = amountOf(id);
      this.queues[set].push(id);
      this.ledger.received++;
      this.ledger.receivedAmount += amount;
      this.ledger.queued++;
      this.ledger.queuedAmount += amount;
    }
  }

  private deliverNotice(id: number, amount: number, users: number[]): void {
    let buf: Buffer | undefined;
    for (const u of users) {
      const ws = this.users.get(u);
      if (!ws || ws.readyState !== ReadyState.OPEN) continue;
      if (!buf) {
        buf = this.out(HEADER_BYTES + 12 + 4 * users.length);
        encodeNotice(buf, 0, this.seconds(), id, amount, users);
      }
      ws.send(buf);
      this.bump(F.notices);
    }
  }

  private deliverChat(from: number, to: number, text: string): boolean {
    const ws = this.users.get(to);
    if (!ws || ws.readyState !== ReadyState.OPEN) return false;
    const buf = this.out(chatSize(text));
    encodeChat(buf, 0, this.seconds(), from, to, text);
    ws.send(buf);
    return true;
  }

  private seconds(): number {
    return Math.floor(this.clock() / 1000);
  }

  private out(n: number): Buffer {
    return this.slab.take(n);
  }

  /** Sends an error frame and closes the connection with 1007 (unparseable) or 1008 (policy). */
  reject(ws: StubSocket, code: number, problem: string): void {
    this.bump(F.errors);
    if (ws.readyState !== ReadyState.OPEN) return;
    const msg = `${wireErrorName(code)}: ${problem}`;
    const buf = Buffer.allocUnsafe(MAX_MESSAGE_BYTES);
    const n = encodeError(buf, 0, this.seconds(), code, msg);
    ws.send(buf.subarray(0, n));
    ws.close(closeCodeFor(code), wireErrorName(code));
  }

  /** Hot path: one decoded-and-validated message from a connection. */
  handle(ws: StubSocket, data: Buffer, isBinary: boolean): void {
    if (!isBinary) return this.reject(ws, WireError.TEXT_FRAME, 'text frames are not part of the protocol; send binary frames');
    const err = decode(data, frame);
    if (err !== 0) return this.reject(ws, err, frame.problem);
    const user = ws[kUser];
    const cmd = frame.cmd;
    if (cmd === Cmd.LOGIN) return this.login(ws, frame.userId);
    if (user < 0) return this.reject(ws, WireError.NOT_LOGGED_IN, `cmd ${cmd} before login: the first message must be login (cmd 0)`);
    switch (cmd) {
      case Cmd.SHAKE:
        if (frame.userId !== user) return this.reject(ws, WireError.WRONG_USER, `shake for user ${frame.userId} on user ${user}'s connection`);
        return this.shake(ws, user);
      case Cmd.CLAIM:
        if (frame.userId !== user) return this.reject(ws, WireError.WRONG_USER, `claim for user ${frame.userId} on user ${user}'s connection`);
        return this.claim(ws, user, frame.envelopeId);
      case Cmd.CHAT:
        if (frame.userId !== user) return this.reject(ws, WireError.WRONG_USER, `chat from user ${frame.userId} on user ${user}'s connection`);
        this.bump(F.chats);
        if (!this.deliverChat(user, frame.toUserId, frame.text)) {
          this.toPrimary({ t: 'chat', from: user, to: frame.toUserId, text: frame.text });
        }
        return;
      default:
        return this.reject(ws, WireError.UNEXPECTED_CMD, `cmd ${cmd} is sent by the server, not by clients`);
    }
  }

  private login(ws: StubSocket, userId: number): void {
    if (ws[kUser] >= 0) return this.reject(ws, WireError.ALREADY_LOGGED_IN, `connection already carries user ${ws[kUser]}`);
    if (this.handOff && !this.owns(userId)) {
      // The user's SET lives in another worker: that worker answers the login (the connection
      // moves). The user rides on the connection until it leaves (liteOnRelease).
      ws[kUser] = userId;
      if ((ws as unknown as LiteConn).release()) return;
      ws[kUser] = -1; // closing already: answer here, it goes away anyway
    }
    const previous = this.users.get(userId);
    if (previous && previous !== ws) this.reject(previous, WireError.REPLACED, `user ${userId} logged in on a newer connection`);
    ws[kUser] = userId;
    this.users.set(userId, ws);
    this.bump(F.logins);
    const buf = this.out(Size.LOGIN_REPLY);
    encodeLoginReply(buf, 0, this.seconds(), userId, LOGIN_OK);
    ws.send(buf);
  }

  private shake(ws: StubSocket, user: number): void {
    const now = this.clock();
    const sec = Math.floor(now / 1000);
    if (sec > this.recSecond) this.second();
    const rec = this.rec;
    rec[F.shakes]++;
    const buf = this.out(Size.SHAKE_REPLY);
    if (this.served >= this.cap) {
      rec[F.overload]++;
      encodeShakeReply(buf, 0, sec, user, ShakeResult.OVERLOAD, 0, 0);
    } else {
      this.served++;
      const id = this.queues[user % this.config.sets].shift();
      if (id < 0) {
        rec[F.empty]++;
        encodeShakeReply(buf, 0, sec, user, ShakeResult.EMPTY, 0, 0);
      } else {
        const amount = amountOf(id);
        rec[F.won]++;
        const l = this.ledger;
        l.won++;
        l.wonAmount += amount;
        l.queued--;
        l.queuedAmount -= amount;
        encodeShakeReply(buf, 0, sec, user, ShakeResult.WON, id, amount);
      }
    }
    ws.send(buf);
  }

  private claim(ws: StubSocket, user: number, envelopeId: number): void {
    if (envelopeId < FIRST_SENT_ID) {
      // Generator envelopes are won by shaking, never claimed.
      this.bump(F.claims);
      const buf = this.out(Size.CLAIM_REPLY);
      encodeClaimReply(buf, 0, this.seconds(), envelopeId, 0);
      ws.send(buf);
      return;
    }
    const req = this.nextReq++;
    this.pendingClaims.set(req, ws);
    this.toPrimary({ t: 'claim', req, user, id: envelopeId });
  }

  /** A connection went away. */
  closed(ws: StubSocket): void {
    this.connections--;
    const user = ws[kUser];
    if (user >= 0 && this.users.get(user) === ws) this.users.delete(user);
  }

  /** A connection released at its login: it goes to the owner of the user's SET. */
  released(ws: StubSocket, user: number, handle: unknown, rest: Buffer | null): void {
    this.connections--;
    this.handedOver++;
    this.handOff!(user, handle, rest, (ws as unknown as LiteConn).raw);
  }
}

function dispatch(ws: StubSocket, data: Buffer, isBinary: boolean): void {
  const worker = ws[kWorker];
  try {
    worker.handle(ws, data, isBinary);
  } catch (err) {
    worker.reject(ws, WireError.INTERNAL, (err as Error).message);
  }
}

// The lite transport's callbacks: shared by all connections of a worker, no closure per connection.
function liteOnMessage(conn: LiteConn, data: Buffer, isBinary: boolean): void {
  dispatch(conn as unknown as StubSocket, data, isBinary);
}

function liteOnClose(conn: LiteConn): void {
  const ws = conn as unknown as StubSocket;
  ws[kWorker].closed(ws);
}

function liteOnError(conn: LiteConn, err: LiteError): void {
  const ws = conn as unknown as StubSocket;
  if (err.slowReader) {
    ws[kWorker]?.bump(F.slowReaders);
    return;
  }
  // Raw TCP: a length field no message can have. The framing still allows one message back, so the
  // client learns why before the FIN (over WebSocket the close code says it).
  if (conn.raw && conn.readyState === ReadyState.OPEN && ws[kWorker]) {
    return ws[kWorker].reject(ws, err.closeCode === 1009 ? WireError.TOO_BIG : WireError.SHORT_FRAME, err.message);
  }
  // The transport closes with 1002/1007/1009 itself (e.g. a frame over maxPayload); count it.
  ws[kWorker]?.bump(F.errors);
}

function liteOnRelease(conn: LiteConn, handle: unknown, rest: Buffer | null): void {
  const ws = conn as unknown as StubSocket;
  ws[kWorker].released(ws, ws[kUser], handle, rest);
}

/** Callbacks of a lite server whose connections this worker holds. */
export function liteHandler(worker: StubWorker): LiteHandler {
  return { onOpen: (conn) => worker.attachLite(conn), onMessage: liteOnMessage, onClose: liteOnClose, onError: liteOnError, onRelease: liteOnRelease };
}
