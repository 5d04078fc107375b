// A load process of the bench (run with `node --import tsx bench/load-client.ts`, forked by
// bench/load-fleet.ts and driven over IPC). It holds users first..first+count-1 of the fleet, one
// WebSocket each, connected round-robin from several 127.0.0.x source addresses and logged in; then
// it sends shakes on the exact `window` schedule (bench/schedule.ts) in timer batches of SLOT_MS and
// counts the replies per second by result.
// Listeners are module-level functions; a connection's state lives on the socket under symbols.
import WebSocket from 'ws';
import { Cmd, Frame, ShakeResult, Size, decode, encodeLogin, encodeShake } from '../common/wire.ts';
import type { ClientSecond, ConnectMsg, FromClient, Phase, ReportMsg, ToClient } from './load-protocol.ts';
import { phasesToChanges, qpsAt, type QpsChange } from '../common/schedule.ts';
import { SLOTS, SLOT_MS, firingRanges, firstInSlot, lapsOf, slotsPerLap } from './schedule.ts';

const kUser = Symbol('bench.user');
const kLogged = Symbol('bench.logged');

interface LoadSocket extends WebSocket {
  [kUser]: number;
  [kLogged]: boolean;
}

const RETRY_DELAY_MS = 250;
const sendOpts = { binary: true } as const;
const frame = new Frame();
/** ws copies (masks) a Buffer into its own frame on send, so one scratch buffer serves every message. */
const scratch = Buffer.allocUnsafe(Math.max(Size.SHAKE, Size.LOGIN));
const ranges = new Float64Array(4);

// ---- connections ----
let cfg: ConnectMsg | undefined;
let sockets: Array<LoadSocket | null> = [];
let attempts = new Uint8Array(0);
const queue: number[] = [];
let queueHead = 0;
let inFlight = 0;
let opened = 0;
let loggedIn = 0;
let failed = 0;
let retries = 0;
let errors = 0;
let closed = 0;
let errorFrames = 0;
let badFrames = 0;
let connectStartMs = 0;
let readySent = false;
let retryTimer: NodeJS.Timeout | undefined;
let progressTimer: NodeJS.Timeout | undefined;

// ---- schedule and counts ----
/** The phases as a QPS timeline: each phase's rate from its `from`, 0 from its `to` (unless the next starts there). */
let changes: QpsChange[] = [];
let base = 0;
let lastTo = 0;
let sent = new Int32Array(0);
let missed = new Int32Array(0);
let won = new Int32Array(0);
let empty = new Int32Array(0);
let overload = new Int32Array(0);
let outside = { won: 0, empty: 0, overload: 0 };
let curSecond = 0;
let curSlot = 0;
let maxLateMs = 0;
let cpuStart: NodeJS.CpuUsage | undefined;
let timer: NodeJS.Timeout | undefined;

function send(msg: FromClient): void {
  if (process.connected) process.send!(msg);
}

function startConnecting(msg: ConnectMsg): void {
  cfg = msg;
  sockets = new Array<LoadSocket | null>(msg.count).fill(null);
  attempts = new Uint8Array(msg.count);
  for (let i = 0; i < msg.count; i++) queue.push(msg.first + i);
  connectStartMs = performance.now();
  progressTimer = setInterval(sendProgress, 1000);
  pump();
}

function pump(): void {
  const c = cfg!;
  while (inFlight < c.maxInFlight && queueHead < queue.length) open(c, queue[queueHead++]);
  maybeReady();
}

function open(c: ConnectMsg, user: number): void {
  inFlight++;
  attempts[user - c.first]++;
  const ws = new WebSocket(c.url, {
    localAddress: c.sourceIps[user % c.sourceIps.length],
    perMessageDeflate: false,
    handshakeTimeout: 10_000,
  }) as LoadSocket;
  ws[kUser] = user;
  ws[kLogged] = false;
  ws.on('open', onOpen);
  ws.on('message', onMessage);
  ws.on('error', onError);
  ws.on('close', onClose);
}

function maybeReady(): void {
  const c = cfg!;
  if (readySent || loggedIn + failed < c.count) return;
  readySent = true;
  clearInterval(progressTimer);
  send({ t: 'ready', loggedIn, failed, retries, errors, ms: Math.round(performance.now() - connectStartMs) });
}

function sendProgress(): void {
  send({ t: 'progress', opened, loggedIn, failed, retries });
}

function onOpen(this: WebSocket): void {
  const ws = this as LoadSocket;
  opened++;
  const n = encodeLogin(scratch, 0, Math.floor(Date.now() / 1000), ws[kUser]);
  ws.send(n === scratch.length ? scratch : scratch.subarray(0, n), sendOpts);
}

function onMessage(this: WebSocket, data: Buffer): void {
  if (decode(data, frame) !== 0) {
    badFrames++;
    return;
  }
  switch (frame.cmd) {
    case Cmd.SHAKE_REPLY:
      countReply(frame.seconds, frame.result);
      return;
    case Cmd.LOGIN_REPLY: {
      const ws = this as LoadSocket;
      if (ws[kLogged]) return;
      ws[kLogged] = true;
      sockets[ws[kUser] - cfg!.first] = ws;
      loggedIn++;
      inFlight--;
      pump();
      return;
    }
    case Cmd.ERROR:
      errorFrames++;
      return;
    default:
      return;
  }
}

function onError(this: WebSocket): void {
  errors++; // 'close' follows
}

function onClose(this: WebSocket): void {
  const ws = this as LoadSocket;
  const c = cfg!;
  const i = ws[kUser] - c.first;
  if (ws[kLogged]) {
    if (sockets[i] === ws) sockets[i] = null;
    closed++;
    return;
  }
  inFlight--;
  if (attempts[i] < c.tries) {
    retries++;
    queue.push(ws[kUser]);
    if (!retryTimer) retryTimer = setTimeout(onRetryTimer, RETRY_DELAY_MS);
  } else {
    failed++;
  }
  pump();
}

function onRetryTimer(): void {
  retryTimer = undefined;
  pump();
}

// ---- shaking ----

/** Counts a reply in the second named by its header (the stub's second of arrival). */
function countReply(second: number, result: number): void {
  const row = second - base;
  if (row < 0 || row >= won.length) {
    if (result === ShakeResult.WON) outside.won++;
    else if (result === ShakeResult.EMPTY) outside.empty++;
    else outside.overload++;
  } else if (result === ShakeResult.WON) won[row]++;
  else if (result === ShakeResult.EMPTY) empty[row]++;
  else overload[row]++;
}

function startRun(p: Phase[]): void {
  changes = phasesToChanges(p);
  base = Math.min(...p.map((x) => x.from));
  lastTo = Math.max(...p.map((x) => x.to));
  const span = lastTo - base + 10; // replies may name a second or two after the last one
  sent = new Int32Array(span);
  missed = new Int32Array(span);
  won = new Int32Array(span);
  empty = new Int32Array(span);
  overload = new Int32Array(span);
  outside = { won: 0, empty: 0, overload: 0 };
  curSecond = base;
  curSlot = 0;
  maxLateMs = 0;
  cpuStart = process.cpuUsage();
  arm();
}

function slotTimeMs(): number {
  return curSecond * 1000 + curSlot * SLOT_MS;
}

function arm(): void {
  timer = curSecond < lastTo ? setTimeout(onSlot, slotTimeMs() - Date.now()) : undefined;
}

function onSlot(): void {
  const now = Date.now();
  const nowSec = Math.floor(now / 1000);
  while (curSecond < lastTo && slotTimeMs() <= now) {
    const late = now - slotTimeMs();
    if (late > maxLateMs) maxLateMs = late;
    fire(curSecond, curSlot, curSecond < nowSec);
    if (++curSlot === SLOTS) {
      curSlot = 0;
      curSecond++;
    }
  }
  arm();
}

/** Sends the shakes of one slot of second t; when the second is already over they are missed. */
function fire(t: number, slot: number, tooLate: boolean): void {
  const c = cfg!;
  const qps = qpsAt(changes, t);
  const laps = lapsOf(qps, c.totalUsers);
  if (laps === 0) return;
  const period = slotsPerLap(laps);
  const lap = slot % laps;
  const inLap = (slot - lap) / laps;
  if (inLap >= period) return;
  const n = firingRanges(t, qps, c.totalUsers, lap, ranges);
  const a = c.first;
  const b = c.first + c.count;
  const row = t - base;
  for (let r = 0; r < n; r++) {
    const lo = Math.max(ranges[2 * r], a);
    const hi = Math.min(ranges[2 * r + 1], b);
    for (let u = firstInSlot(lo, inLap, period); u < hi; u += period) {
      const ws = sockets[u - a];
      if (tooLate || ws === null || ws.readyState !== WebSocket.OPEN) {
        missed[row]++;
        continue;
      }
      encodeShake(scratch, 0, t, u);
      ws.send(scratch, sendOpts);
      sent[row]++;
    }
  }
}

function report(): ReportMsg {
  const seconds: ClientSecond[] = [];
  const totals = { sent: 0, missed: 0, won: outside.won, empty: outside.empty, overload: outside.overload, errorFrames, badFrames, closed };
  for (let i = 0; i < sent.length; i++) {
    const row = { second: base + i, sent: sent[i], missed: missed[i], won: won[i], empty: empty[i], overload: overload[i] };
    totals.sent += row.sent;
    totals.missed += row.missed;
    totals.won += row.won;
    totals.empty += row.empty;
    totals.overload += row.overload;
    if (row.sent || row.missed || row.won || row.empty || row.overload) seconds.push(row);
  }
  const cpu = cpuStart ? process.cpuUsage(cpuStart) : { user: 0, system: 0 };
  return { t: 'report', pid: process.pid, seconds, totals, cpuUs: cpu.user + cpu.system, maxLateMs };
}

function onParent(msg: ToClient): void {
  switch (msg.t) {
    case 'connect':
      startConnecting(msg);
      return;
    case 'run':
      startRun(msg.phases);
      return;
    case 'report':
      send(report());
      return;
    case 'exit':
      if (timer) clearTimeout(timer);
      process.exit(0);
  }
}

process.on('message', onParent);
process.on('disconnect', () => process.exit(0)); // the bench is gone: so are we
process.on('uncaughtException', (err) => {
  if (!process.connected) process.exit(1);
  process.send!({ t: 'fatal', message: err.stack ?? String(err) } satisfies FromClient, () => process.exit(1));
});
