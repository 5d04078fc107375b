// One stub worker: holds WebSocket connections (one user each), its part of every SET's envelope
// queue, and per-second counters that it hands to the primary once each second is over.
// Listeners are module-level functions; a connection's state lives on the socket under symbols.
// The protocol logic sees a MessageConn ({readyState, send, close}): `ws`'s WebSocket (attach) or
// the lite transport's LiteConn (liteHandler, --ws-impl lite) — one code path for both.
import type { WebSocket } from 'ws';
import type { LiteConn, LiteHandler, MessageConn } from '../common/wslite.ts';
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
import { FIRST_SENT_ID, amountOf, partOf, setOf } from './envelopes.ts';
import { F, N_FIELDS } from './fields.ts';
import type { ToPrimary, ToWorker, WorkerLedger } from './ipc.ts';
import { U32Queue } from './queue.ts';

const kUser = Symbol('hongbao.user');
const kWorker = Symbol('hongbao.worker');

interface StubSocket extends MessageConn {
  [kUser]: number;
  [kWorker]: StubWorker;
}

export interface WorkerConfig {
  /** 0-based worker index and worker count: which part of each SET this worker holds. */
  index: number;
  workers: number;
  sets: number;
  /** Served shakes per second this worker may answer before overload (its share of --max-qps). */
  cap: number;
  clock?: () => number;
}

const frame = new Frame();

export class StubWorker {
  readonly users = new Map<number, StubSocket>();
  connections = 0;
  private readonly parts: U32Queue[];
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
  ) {
    this.parts = Array.from({ length: config.sets }, () => new U32Queue());
    this.clock = config.clock ?? Date.now;
    this.recSecond = Math.floor(this.clock() / 1000);
  }

  /** Takes over a freshly accepted WebSocket (`ws`). */
  attach(socket: WebSocket): void {
    const ws = socket as unknown as StubSocket;
    ws[kUser] = -1;
    ws[kWorker] = this;
    this.connections++;
    socket.on('message', onMessage);
    socket.on('close', onClose);
    socket.on('error', onError);
  }

  /** Takes over a freshly opened lite connection (its events arrive through liteHandler). */
  attachLite(conn: LiteConn): void {
    const ws = conn as unknown as StubSocket;
    ws[kUser] = -1;
    ws[kWorker] = this;
    this.connections++;
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
    return { t: 'sec', upTo: s - 1, records, connections: this.connections, ledger: { ...this.ledger } };
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
        if (ws && ws.readyState === 1) {
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
      if (partOf(id, sets, workers) !== index) continue;
      const amount = amountOf(id);
      this.parts[setOf(id, sets)].push(id);
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
      if (!ws || ws.readyState !== 1) continue;
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
    if (!ws || ws.readyState !== 1) return false;
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
    if (ws.readyState !== 1) return;
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
    if (this.served >= this.config.cap) {
      rec[F.overload]++;
      encodeShakeReply(buf, 0, sec, user, ShakeResult.OVERLOAD, 0, 0);
    } else {
      this.served++;
      const id = this.parts[user % this.config.sets].shift();
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
}

function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  dispatch(this as unknown as StubSocket, data, isBinary);
}

function dispatch(ws: StubSocket, data: Buffer, isBinary: boolean): void {
  const worker = ws[kWorker];
  try {
    worker.handle(ws, data, isBinary);
  } catch (err) {
    worker.reject(ws, WireError.INTERNAL, (err as Error).message);
  }
}

function onClose(this: WebSocket): void {
  const ws = this as unknown as StubSocket;
  ws[kWorker].closed(ws);
}

function onError(this: WebSocket): void {
  // ws already closes the socket (e.g. 1009 for a frame over maxPayload); count it.
  (this as unknown as StubSocket)[kWorker].bump(F.errors);
}

// The lite transport's callbacks: shared by all connections of a worker, no closure per connection.
function liteOnMessage(conn: LiteConn, data: Buffer, isBinary: boolean): void {
  dispatch(conn as unknown as StubSocket, data, isBinary);
}

function liteOnClose(conn: LiteConn): void {
  const ws = conn as unknown as StubSocket;
  ws[kWorker].closed(ws);
}

function liteOnError(conn: LiteConn): void {
  // The transport closes with 1002/1007/1009 itself (e.g. a frame over maxPayload); count it.
  const ws = conn as unknown as StubSocket;
  ws[kWorker]?.bump(F.errors);
}

/** Callbacks of a lite server whose connections this worker holds. */
export function liteHandler(worker: StubWorker): LiteHandler {
  return { onOpen: (conn) => worker.attachLite(conn), onMessage: liteOnMessage, onClose: liteOnClose, onError: liteOnError };
}
