// The connection pool of one agent worker: one connection per user (WebSocket or raw TCP), opened at a bounded ramp (token
// bucket) and within a window of attempts in flight that adapts to the server (ConnectWindow: grows
// while logins come back fast, shrinks when they slow down or fail, as TCP's congestion window
// does), logged in, and reopened after a close with jittered exponential backoff. Failed and closed
// users wait in a timing wheel of 100 ms slots, so a server restart is followed by a paced
// reconnect, never a storm. New attempts start when one ends (login reply, close); a timer runs only
// while something waits on time (a token, a retry slot), so a pool holding its connections idles.
//
// Hot-path rules: listeners are module-level functions; a socket's state is its user index under a
// symbol; per-user state lives in typed arrays indexed by the worker-local user index; outgoing
// frames are cut from slabs; no closure per connection or message.
//
// Two clients (--ws-impl): the lite transport (common/wslite.ts, the default; WebSocket or, for a
// tcp:// server, the original raw-TCP framing) or the `ws` package (WebSocket only, and wss://); the
// pool sees either through the same small connection interface (send, close, terminate).
import WebSocket from 'ws';
import { Slab } from '../common/slab.ts';
import { LiteClient, type LiteConn, type LiteError, type LiteHandler, type MessageConn } from '../common/wslite.ts';
import { Cmd, Frame, LOGIN_OK, ShakeResult, Size, decode, encodeClaim, encodeLogin, encodeShake } from '../common/wire.ts';
import type { ConnReport } from './ipc.ts';
import { R, type SecondRecs } from './stats.ts';
import { ConnectWindow } from './window.ts';

const kIdx = Symbol('hongbao.idx');
const kPool = Symbol('hongbao.pool');

interface AgentSocket extends MessageConn {
  terminate(): void;
  [kIdx]: number;
  [kPool]: ConnectionPool;
}

/** Per-user connection state. */
export const St = { DOWN: 0, WAITING: 1, CONNECTING: 2, OPEN: 3, READY: 4 } as const;

/** Outstanding shakes remembered per user; a user with this many unanswered counts further shakes missed. */
const PENDING = 4;
/** Shortest wait for the token bucket. */
const TICK_MS = 10;
/** Most handshakes in flight per worker, however fast the server answers. */
const MAX_IN_FLIGHT = 512;
/** Port shift per retry (a prime, so successive retries walk the whole range). */
const PORT_STEP = 7919;
const WHEEL_SLOT_MS = 100;
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 30_000;

export interface PoolConfig {
  server: string;
  /** User ids of this worker, by local index. */
  ids: Uint32Array;
  /** Source IP of each local user (index into sourceIps; -1 = default). */
  ipOf: Int32Array;
  /**
   * First-choice local port of each local user (0: let the kernel choose). See ConnectionPool.open:
   * binding port 0 on a source address makes the kernel search for a free port, which costs
   * milliseconds of CPU per connect once thousands of ports are bound or in TIME_WAIT on it.
   */
  portOf: Uint16Array;
  portLow: number;
  portHigh: number;
  sourceIps: string[];
  ramp: number;
  connectTimeoutMs: number;
  /** Client implementation: lite when absent (the default), or the ws package. */
  wsImpl?: 'ws' | 'lite';
  /**
   * The original server answers some shakes with a notice (cmd 4) instead of a shake reply: then a
   * notice answers the oldest unanswered shake of its connection (counted answered and won).
   */
  noticeAnswersShake?: boolean;
  /** Synchronised clock (ms). */
  now: () => number;
  recs: SecondRecs;
  random?: () => number;
}

const frame = new Frame();

export class ConnectionPool {
  readonly n: number;
  readonly state: Uint8Array;
  private readonly sockets: Array<AgentSocket | undefined>;
  private readonly attempts: Uint8Array;
  private readonly pendAt: Float64Array;
  private readonly pendHead: Uint8Array;
  private readonly pendCount: Uint8Array;
  private readonly slab = new Slab();
  private readonly random: () => number;
  /** Users due for a (re)connect, FIFO. */
  private queue: number[] = [];
  private queueHead = 0;
  private readonly wheel = new Map<number, number[]>();
  /** Earliest slot in the wheel (Infinity: empty). */
  private wheelMin = Infinity;
  private tokens = 0;
  private lastTick = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private pumping = false;
  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    this.pump();
  };
  /** When each user's current attempt began (ms): its login latency steers the window. */
  private readonly openedAt: Float64Array;
  readonly window: ConnectWindow;
  private readonly wsOpts: WebSocket.ClientOptions[];
  private readonly lite: LiteClient | undefined;
  private stopped = false;

  connected = 0;
  /** Attempts in flight: from connect until the login reply (or the close that ends the attempt). */
  connecting = 0;
  logins = 0;
  failures = 0;
  readonly ipErrors: number[];
  lastError = '';

  constructor(private readonly cfg: PoolConfig) {
    this.n = cfg.ids.length;
    this.state = new Uint8Array(this.n);
    this.sockets = new Array(this.n).fill(undefined);
    this.attempts = new Uint8Array(this.n);
    this.pendAt = new Float64Array(this.n * PENDING);
    this.pendHead = new Uint8Array(this.n);
    this.pendCount = new Uint8Array(this.n);
    this.random = cfg.random ?? Math.random;
    this.ipErrors = new Array(cfg.sourceIps.length + 1).fill(0);
    this.openedAt = new Float64Array(this.n);
    this.window = new ConnectWindow({ max: Math.max(1, Math.min(MAX_IN_FLIGHT, cfg.ramp)), targetMs: ConnectWindow.targetFor(cfg.connectTimeoutMs) });
    // One options object per source IP, shared by all its sockets.
    const base = { perMessageDeflate: false, handshakeTimeout: cfg.connectTimeoutMs, skipUTF8Validation: true, maxPayload: 64 * 1024 };
    this.wsOpts = cfg.sourceIps.map((ip) => ({ ...base, localAddress: ip }));
    this.wsOpts.push(base);
    this.lite =
      (cfg.wsImpl ?? 'lite') === 'lite' ? new LiteClient(cfg.server, { handler: liteEvents, maxPayload: 64 * 1024, handshakeTimeoutMs: cfg.connectTimeoutMs }) : undefined;
  }

  /** Queues every user and starts the ramp. */
  start(): void {
    for (let i = 0; i < this.n; i++) {
      this.state[i] = St.WAITING;
      this.queue.push(i);
    }
    this.lastTick = Date.now();
    this.tokens = 1;
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const ws of this.sockets) ws?.terminate();
  }

  report(): Omit<ConnReport, 'rss' | 'heapUsed'> {
    let waiting = this.queue.length - this.queueHead;
    for (const list of this.wheel.values()) waiting += list.length;
    return {
      connected: this.connected,
      connecting: this.connecting,
      window: Math.floor(this.window.size),
      waiting,
      logins: this.logins,
      failures: this.failures,
      ipErrors: this.ipErrors.slice(),
      lastError: this.lastError,
    };
  }

  /**
   * Opens what the queue, the window and the token bucket (`ramp` connects per second, at most
   * 100 ms worth at once) allow, then arms a timer if what is left waits on time.
   */
  private pump(): void {
    if (this.stopped || this.pumping) return;
    this.pumping = true;
    const t = Date.now();
    const cap = Math.max(1, this.cfg.ramp / 10);
    this.tokens = Math.min(cap, this.tokens + ((t - this.lastTick) * this.cfg.ramp) / 1000);
    this.lastTick = t;
    const slot = Math.floor(t / WHEEL_SLOT_MS);
    if (this.wheelMin <= slot) {
      let min = Infinity;
      for (const [s, list] of this.wheel) {
        if (s > slot) {
          if (s < min) min = s;
          continue;
        }
        for (const i of list) this.queue.push(i);
        this.wheel.delete(s);
      }
      this.wheelMin = min;
    }
    const inFlight = this.window.limit();
    while (this.tokens >= 1 && this.queueHead < this.queue.length && this.connecting < inFlight) {
      const i = this.queue[this.queueHead++];
      this.tokens--;
      this.open(i);
    }
    if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    this.pumping = false;
    // A full window waits for an attempt to end (which pumps again); a token or a retry slot waits on time.
    let wake = Infinity;
    if (this.queueHead < this.queue.length && this.connecting < this.window.limit()) wake = t + Math.max(TICK_MS, ((1 - this.tokens) * 1000) / this.cfg.ramp);
    if (this.wheelMin < Infinity) wake = Math.min(wake, (this.wheelMin + 1) * WHEEL_SLOT_MS);
    this.arm(wake);
  }

  private arm(at: number): void {
    if (at === Infinity || (this.timer && this.timerAt <= at)) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.onTimer, Math.max(0, at - Date.now()));
  }

  private open(i: number): void {
    if (this.stopped || this.state[i] !== St.WAITING) return;
    this.state[i] = St.CONNECTING;
    this.connecting++;
    const ip = this.cfg.ipOf[i];
    let opts = this.wsOpts[ip < 0 ? this.wsOpts.length - 1 : ip];
    const first = this.cfg.portOf[i];
    let localPort = 0;
    if (first !== 0) {
      // An explicit local port per (source IP, user): bind() is then a hash lookup, not a search.
      // Users of one IP get distinct ports (pre-flight: users per IP <= the range); a retry moves
      // to another port, so a port held by someone else or a 4-tuple in TIME_WAIT costs one retry.
      const { portLow, portHigh } = this.cfg;
      const range = portHigh - portLow + 1;
      localPort = portLow + ((first - portLow + this.attempts[i] * PORT_STEP) % range);
      if (!this.lite) opts = { ...opts, localPort } as WebSocket.ClientOptions;
    }
    this.openedAt[i] = Date.now();
    let s: AgentSocket;
    try {
      s = this.lite
        ? (this.lite.connect(ip < 0 ? undefined : this.cfg.sourceIps[ip], localPort || undefined) as unknown as AgentSocket)
        : openWs(this.cfg.server, opts);
    } catch (err) {
      this.connecting--;
      this.fail(i, (err as Error).message);
      return;
    }
    // Events come later (next tick at the earliest): the socket's identity is set in time.
    s[kIdx] = i;
    s[kPool] = this;
    this.sockets[i] = s;
  }

  /** Counts a failed attempt and schedules a retry with jittered exponential backoff. */
  private fail(i: number, message: string): void {
    this.attemptFailed(i);
    this.lastError = message;
    this.retry(i);
  }

  /** A connect attempt of user i failed: counted, against its source IP, and the window shrinks. */
  private attemptFailed(i: number): void {
    this.failures++;
    this.window.failed(Date.now());
    const ip = this.cfg.ipOf[i];
    this.ipErrors[ip < 0 ? this.ipErrors.length - 1 : ip]++;
  }

  private retry(i: number): void {
    if (this.stopped) return;
    const a = this.attempts[i];
    if (a < 255) this.attempts[i] = a + 1;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(a, 8)) * (0.5 + this.random());
    this.state[i] = St.WAITING;
    const slot = Math.floor((Date.now() + delay) / WHEEL_SLOT_MS);
    const list = this.wheel.get(slot);
    if (list) list.push(i);
    else this.wheel.set(slot, [i]);
    if (slot < this.wheelMin) this.wheelMin = slot;
  }

  opened(ws: AgentSocket): void {
    const i = ws[kIdx];
    this.state[i] = St.OPEN;
    const buf = this.slab.take(Size.LOGIN);
    encodeLogin(buf, 0, Math.floor(this.cfg.now() / 1000), this.cfg.ids[i]);
    ws.send(buf);
  }

  errored(ws: AgentSocket, err: Error): void {
    const i = ws[kIdx];
    if (this.sockets[i] !== ws) return;
    this.lastError = err.message;
    if (this.state[i] === St.CONNECTING) {
      // The close that follows does the bookkeeping; count the failure against the source IP here.
      this.attemptFailed(i);
    } else {
      this.cfg.recs.add(Math.floor(this.cfg.now() / 1000), R.errors);
    }
  }

  closed(ws: AgentSocket): void {
    const i = ws[kIdx];
    if (this.sockets[i] !== ws) return;
    this.sockets[i] = undefined;
    const s = this.state[i];
    if (s === St.CONNECTING || s === St.OPEN) this.connecting--;
    if (s === St.READY) this.connected--;
    // Shakes still unanswered are lost with the connection: sent > answered shows them.
    this.pendCount[i] = 0;
    this.state[i] = St.DOWN;
    this.retry(i);
    this.pump();
  }

  /** The oldest unanswered shake of user i got its answer (`result`) at `now`: counted in the second it was due. */
  private answered(i: number, now: number, result: number): void {
    const h = this.pendHead[i];
    const at = this.pendAt[i * PENDING + h];
    this.pendHead[i] = (h + 1) % PENDING;
    this.pendCount[i]--;
    const rec = this.cfg.recs.rec(Math.floor(at / 1000));
    const c = rec.c;
    c[R.answered]++;
    if (result === ShakeResult.WON) c[R.won]++;
    else if (result === ShakeResult.EMPTY) c[R.empty]++;
    else c[R.overload]++;
    const lat = now - at;
    rec.h.record(lat > 0 ? Math.round(lat * 1000) : 0);
  }

  /** Hot path: one frame from the server. */
  handle(ws: AgentSocket, data: Buffer): void {
    const i = ws[kIdx];
    const err = decode(data, frame);
    const now = this.cfg.now();
    if (err !== 0) {
      this.cfg.recs.add(Math.floor(now / 1000), R.errors);
      return;
    }
    switch (frame.cmd) {
      case Cmd.SHAKE_REPLY: {
        const k = this.pendCount[i];
        if (k === 0) {
          this.cfg.recs.add(Math.floor(now / 1000), R.errors);
          return;
        }
        this.answered(i, now, frame.result);
        return;
      }
      case Cmd.LOGIN_REPLY:
        if (frame.result === LOGIN_OK && this.state[i] === St.OPEN) {
          const t = Date.now();
          this.window.succeeded(t, t - this.openedAt[i]);
          this.connecting--;
          this.state[i] = St.READY;
          this.attempts[i] = 0;
          this.connected++;
          this.logins++;
          this.pump();
        } else {
          this.lastError = `login of user ${this.cfg.ids[i]} refused with result ${frame.result}`;
          ws.close(1000);
        }
        return;
      case Cmd.NOTICE: {
        if (this.cfg.noticeAnswersShake && this.pendCount[i] > 0) this.answered(i, now, ShakeResult.WON);
        const me = this.cfg.ids[i];
        for (let k = 0; k < frame.count; k++) {
          if (frame.users[k] !== me) continue;
          // The server sends a notice once per named user: claim it once.
          const buf = this.slab.take(Size.CLAIM);
          encodeClaim(buf, 0, Math.floor(now / 1000), me, frame.envelopeId);
          ws.send(buf);
          break;
        }
        return;
      }
      case Cmd.CLAIM_REPLY: {
        const rec = this.cfg.recs.rec(Math.floor(now / 1000));
        rec.c[R.claims]++;
        rec.c[R.claimedAmount] += frame.amount;
        return;
      }
      case Cmd.ERROR:
        this.lastError = `server error ${frame.code}: ${frame.text}`;
        this.cfg.recs.add(Math.floor(now / 1000), R.errors);
        return;
      default:
        // chat and anything else: not part of the load.
        return;
    }
  }

  /**
   * Sends user i's shake scheduled at `at` (synchronised ms). Returns false (the caller counts it
   * missed) when the user is not logged in or has PENDING shakes unanswered.
   */
  shake(i: number, at: number): boolean {
    if (this.state[i] !== St.READY) return false;
    const k = this.pendCount[i];
    if (k >= PENDING) return false;
    const ws = this.sockets[i]!;
    const buf = this.slab.take(Size.SHAKE);
    encodeShake(buf, 0, Math.floor(at / 1000), this.cfg.ids[i]);
    ws.send(buf);
    this.pendAt[i * PENDING + ((this.pendHead[i] + k) % PENDING)] = at;
    this.pendCount[i] = k + 1;
    return true;
  }
}

function onOpen(this: WebSocket): void {
  const ws = this as unknown as AgentSocket;
  ws[kPool].opened(ws);
}

function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  const ws = this as unknown as AgentSocket;
  if (!isBinary) return;
  ws[kPool].handle(ws, data);
}

function onError(this: WebSocket, err: Error): void {
  const ws = this as unknown as AgentSocket;
  ws[kPool].errored(ws, err);
}

function onClose(this: WebSocket): void {
  const ws = this as unknown as AgentSocket;
  ws[kPool].closed(ws);
}

/** The lite client's callbacks: one object for every pool and connection. */
const liteEvents: LiteHandler = {
  onOpen(conn: LiteConn): void {
    const ws = conn as unknown as AgentSocket;
    ws[kPool].opened(ws);
  },
  onMessage(conn: LiteConn, data: Buffer, isBinary: boolean): void {
    if (!isBinary) return;
    const ws = conn as unknown as AgentSocket;
    ws[kPool].handle(ws, data);
  },
  onError(conn: LiteConn, err: LiteError): void {
    const ws = conn as unknown as AgentSocket;
    ws[kPool].errored(ws, err);
  },
  onClose(conn: LiteConn): void {
    const ws = conn as unknown as AgentSocket;
    ws[kPool].closed(ws);
  },
};

/** A ws-package client connection with the module-level listeners. */
function openWs(server: string, opts: WebSocket.ClientOptions): AgentSocket {
  const ws = new WebSocket(server, opts);
  ws.binaryType = 'nodebuffer';
  ws.on('open', onOpen);
  ws.on('message', onMessage);
  ws.on('error', onError);
  ws.on('close', onClose);
  return ws as unknown as AgentSocket;
}
