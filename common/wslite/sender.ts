// The sending side of the lite transport: each outgoing frame is ONE buffer (header + payload,
// masked on the client side) cut from a shared slab, so a message costs one socket.write; raw-TCP
// messages are copied as they are (they carry their own length). Client masks and handshake keys
// come from one pool of random bytes refilled 8 KiB at a time.
import { randomFillSync } from 'node:crypto';
import type net from 'node:net';
import { Slab } from '../slab.ts';

/** What the sender needs of a connection (LiteConn). */
export interface FrameSink {
  readonly socket: net.Socket;
  /** Server frames go unmasked, client frames masked. */
  readonly isServer: boolean;
  /** Called before a close frame is written. */
  markCloseSent(): void;
}

/** Frames up to this size are cut from the slab; larger ones get their own buffer. */
const SLAB_FRAME_MAX = 16 * 1024;
const slab = new Slab();

const RAND_POOL = 8192;
const randPool = Buffer.allocUnsafe(RAND_POOL);
let randOff = RAND_POOL;

/** Where `n` unused random bytes start in randPool (refilled when they run out). */
function randomOffset(n: number): number {
  if (randOff + n > RAND_POOL) {
    randomFillSync(randPool);
    randOff = 0;
  }
  const o = randOff;
  randOff += n;
  return o;
}

/** `n` random bytes in base64 (a client's Sec-WebSocket-Key: n = 16). */
export function randomBase64(n: number): string {
  const r = randomOffset(n);
  return randPool.toString('base64', r, r + n);
}

/** Close codes one may send (RFC 6455 7.4, as `ws` checks them). */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** Raw TCP: the message as it is (it carries its own length), copied so the caller may reuse it. */
export function writeRaw(conn: FrameSink, data: Buffer): void {
  const n = data.length;
  const out = n <= SLAB_FRAME_MAX ? slab.take(n) : Buffer.allocUnsafe(n);
  data.copy(out, 0);
  conn.socket.write(out);
}

/** Writes one frame as one buffer (slab slice), masked on the client side. */
export function writeFrame(conn: FrameSink, b0: number, payload: Buffer): void {
  const n = payload.length;
  const mask = !conn.isServer;
  const hl = (n < 126 ? 2 : n < 65536 ? 4 : 10) + (mask ? 4 : 0);
  const out = hl + n <= SLAB_FRAME_MAX ? slab.take(hl + n) : Buffer.allocUnsafe(hl + n);
  out[0] = b0;
  const mbit = mask ? 0x80 : 0;
  let o: number;
  if (n < 126) {
    out[1] = n | mbit;
    o = 2;
  } else if (n < 65536) {
    out[1] = 126 | mbit;
    out.writeUInt16BE(n, 2);
    o = 4;
  } else {
    out[1] = 127 | mbit;
    out.writeUInt32BE(0, 2);
    out.writeUInt32BE(n, 6);
    o = 10;
  }
  if (mask) {
    const r = randomOffset(4);
    out[o] = randPool[r];
    out[o + 1] = randPool[r + 1];
    out[o + 2] = randPool[r + 2];
    out[o + 3] = randPool[r + 3];
    const p = o + 4;
    for (let i = 0; i < n; i++) out[p + i] = payload[i] ^ out[o + (i & 3)];
  } else {
    payload.copy(out, o);
  }
  conn.socket.write(out);
}

const EMPTY = Buffer.alloc(0);

/** Writes a close frame: no payload without a code, else the code and the reason (<= 123 bytes). */
export function writeClose(conn: FrameSink, code: number | undefined, reason: string): void {
  conn.markCloseSent();
  if (code === undefined) {
    writeFrame(conn, 0x88, EMPTY);
    return;
  }
  const r = Buffer.from(reason, 'utf8');
  if (r.length > 123) throw new RangeError('The close reason must not be greater than 123 bytes');
  const p = Buffer.allocUnsafe(2 + r.length);
  p.writeUInt16BE(code, 0);
  r.copy(p, 2);
  writeFrame(conn, 0x88, p);
}
