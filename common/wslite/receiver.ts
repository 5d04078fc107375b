// The receiving side of the lite transport: module functions over the parser fields of a LiteConn
// (partial, need, have, frags, ...), so that a connection costs no receiver object of its own.
// - A partial-frame buffer exists only while a frame is split across reads (exact size once the
//   header is known, so a long frame is never re-concatenated).
// - Reads may land in a buffer shared by all connections (see endpoint.ts): what outlives the call
//   (a partial frame, fragments, the bytes after a release) is copied. Messages handed to onMessage
//   are views valid only during the call: copy what you keep.
//
// WebSocket: before the frames, the bytes go to the opening handshake (conn.ts, handshake.ts).
// Opcodes text (1, reported with isBinary=false after a UTF-8 check), binary (2), close (8: echoed,
// then the TCP connection is ended), ping (9: answered with a pong), pong (10: ignored). Fragmented
// messages (FIN=0 + continuation frames) are reassembled up to maxPayload in total; interleaved
// control frames are handled. Lengths in the 7, 16 and 64-bit forms. A frame or message over
// maxPayload closes with 1009; protocol violations (mask bit wrong for the side, RSV bits, unknown
// opcode, fragmented or >125-byte control frame, stray continuation, bad close code) close with
// 1002, invalid UTF-8 in a text frame or a close reason with 1007 — as `ws` does, with an onError
// first.
//
// Raw TCP (the original experiment's framing): the messages back to back, each cut by the u16
// length that starts its own 12-byte header; a length outside 12..min(maxPayload, 65535) reports an
// error (closeCode 1007, or 1009 when too big) and ends the connection.
import { isUtf8 } from 'node:buffer';
import type { LiteConn } from './conn.ts';
import { isValidCloseCode, writeClose, writeFrame } from './sender.ts';
import { F_CLOSE_RECEIVED, F_CLOSE_SENT, F_RELEASED, F_STOPPED, ReadyState } from './shared.ts';

/** Raw TCP: the smallest message is its header (u16 length | u16 cmd | u64 seconds). */
const RAW_HEADER_BYTES = 12;

/** Bytes from the socket: buf[off, end). buf may be reused by the caller after return. */
export function receive(conn: LiteConn, buf: Buffer, off: number, end: number): void {
  if (conn.flags & F_STOPPED) return;
  if (conn.ep.raw) return receiveRaw(conn, buf, off, end);
  if (conn.readyState === ReadyState.CONNECTING) {
    // The handshake parses the frames that follow it in the same read itself.
    if (conn.ep.isServer) conn.serverHandshake(buf, off, end);
    else conn.clientHandshake(buf, off, end);
    return;
  }
  const p = conn.partial;
  if (p !== null) {
    if (conn.need > 0) {
      const take = Math.min(conn.need - conn.have, end - off);
      buf.copy(p, conn.have, off, off + take);
      conn.have += take;
      off += take;
      if (conn.have < conn.need) return;
      conn.partial = null;
      conn.need = 0;
      conn.have = 0;
      if (parse(conn, p, 0, p.length) < 0) {
        if (conn.flags & F_RELEASED) keepRest(conn, buf, off, end);
        return;
      }
    } else {
      // Fewer than 14 bytes of a header: join with the new bytes and parse again.
      const joined = Buffer.concat([p, buf.subarray(off, end)]);
      conn.partial = null;
      buf = joined;
      off = 0;
      end = joined.length;
    }
  }
  if (off >= end) return;
  const used = parse(conn, buf, off, end);
  if (used < 0 || used >= end) return;
  if (conn.need > 0) {
    const whole = Buffer.allocUnsafe(conn.need);
    buf.copy(whole, 0, used, end);
    conn.have = end - used;
    conn.partial = whole;
  } else {
    conn.partial = Buffer.from(buf.subarray(used, end));
  }
}

/** Raw TCP: cuts buf[off, end) into messages by their u16 length; keeps an incomplete tail. */
function receiveRaw(conn: LiteConn, buf: Buffer, off: number, end: number): void {
  const p = conn.partial;
  if (p !== null) {
    // Join the held tail with the new bytes (rare: a message split across reads).
    buf = Buffer.concat([p, buf.subarray(off, end)]);
    conn.partial = null;
    off = 0;
    end = buf.length;
  }
  const max = Math.min(conn.ep.maxPayload, 65535);
  while (end - off >= 2) {
    const len = buf.readUInt16BE(off);
    if (len < RAW_HEADER_BYTES || len > max) {
      // As over WebSocket: 1009 for too big, 1007 for what cannot be a message.
      conn.fail(len > max ? 1009 : 1007, `message length ${len} is outside ${RAW_HEADER_BYTES}..${max}`);
      return;
    }
    if (end - off < len) break;
    const start = off;
    off += len;
    if (conn.readyState === ReadyState.OPEN) conn.ep.handler.onMessage(conn, buf.subarray(start, off), true);
    if (conn.flags & F_STOPPED) {
      if (conn.flags & F_RELEASED) keepRest(conn, buf, off, end);
      return;
    }
  }
  if (off < end) conn.partial = Buffer.from(buf.subarray(off, end));
}

/** Released connection: keeps buf[off, end) for the process that takes it over (conn.partial). */
function keepRest(conn: LiteConn, buf: Buffer, off: number, end: number): void {
  if (off >= end) return;
  const more = Buffer.from(buf.subarray(off, end));
  conn.partial = conn.partial === null ? more : Buffer.concat([conn.partial, more]);
}

/**
 * Parses whole frames in buf[off, end). Returns where the first incomplete frame starts (setting
 * `need` to its size when its header is complete), or -1 once reading stopped.
 */
function parse(conn: LiteConn, buf: Buffer, off: number, end: number): number {
  const isServer = conn.ep.isServer;
  while (off < end) {
    conn.need = 0;
    const avail = end - off;
    if (avail < 2) return off;
    const b0 = buf[off];
    const b1 = buf[off + 1];
    let len = b1 & 0x7f;
    let hl = 2;
    if (len === 126) {
      if (avail < 4) return off;
      len = buf.readUInt16BE(off + 2);
      hl = 4;
    } else if (len === 127) {
      if (avail < 10) return off;
      const hi = buf.readUInt32BE(off + 2);
      len = hi * 4294967296 + buf.readUInt32BE(off + 6);
      hl = 10;
    }
    const op = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    if ((b0 & 0x70) !== 0) return stop(conn, 1002, 'RSV1, RSV2 and RSV3 must be clear');
    if (masked !== isServer) return stop(conn, 1002, isServer ? 'MASK must be set' : 'MASK must be clear');
    if (op >= 8) {
      if (op > 10) return stop(conn, 1002, `invalid opcode ${op}`);
      if ((b0 & 0x80) === 0) return stop(conn, 1002, 'FIN must be set on control frames');
      if (len > 125) return stop(conn, 1002, `invalid payload length ${len} for a control frame`);
    } else if (op === 0) {
      if (conn.frags === null) return stop(conn, 1002, 'continuation frame without a message to continue');
      if (conn.fragLen + len > conn.ep.maxPayload) return stop(conn, 1009, 'Max payload size exceeded');
    } else if (op === 1 || op === 2) {
      if (conn.frags !== null) return stop(conn, 1002, 'new message before the fragmented one was finished');
      if (len > conn.ep.maxPayload) return stop(conn, 1009, 'Max payload size exceeded');
    } else {
      return stop(conn, 1002, `invalid opcode ${op}`);
    }
    if (masked) hl += 4;
    if (avail < hl + len) {
      conn.need = hl + len;
      return off;
    }
    const start = off + hl;
    off = start + len;
    if (masked && len > 0) {
      const m = start - 4;
      for (let i = 0; i < len; i++) buf[start + i] ^= buf[m + (i & 3)];
    }
    if (!frame(conn, b0, op, buf, start, off)) {
      if (conn.flags & F_RELEASED) keepRest(conn, buf, off, end);
      return -1;
    }
  }
  return off;
}

function stop(conn: LiteConn, code: number, message: string): number {
  conn.fail(code, message);
  return -1;
}

/** One whole, validated frame. Returns false once reading stopped. */
function frame(conn: LiteConn, b0: number, op: number, buf: Buffer, start: number, end: number): boolean {
  const fin = (b0 & 0x80) !== 0;
  switch (op) {
    case 2:
    case 1:
      if (fin) return message(conn, op, buf.subarray(start, end));
      conn.frags = [Buffer.from(buf.subarray(start, end))];
      conn.fragOp = op;
      conn.fragLen = end - start;
      return true;
    case 0: {
      conn.frags!.push(Buffer.from(buf.subarray(start, end)));
      conn.fragLen += end - start;
      if (!fin) return true;
      const whole = Buffer.concat(conn.frags!, conn.fragLen);
      conn.frags = null;
      conn.fragLen = 0;
      return message(conn, conn.fragOp, whole);
    }
    case 8:
      return closeFrame(conn, buf, start, end);
    case 9:
      if (conn.readyState === ReadyState.OPEN) writeFrame(conn, 0x8a, buf.subarray(start, end));
      return true;
    default:
      return true; // pong
  }
}

function message(conn: LiteConn, op: number, data: Buffer): boolean {
  if (op === 1 && !isUtf8(data)) {
    conn.fail(1007, 'invalid UTF-8 sequence in a text frame');
    return false;
  }
  // After our close frame, data is no longer delivered (only the peer's close is awaited).
  if (conn.readyState === ReadyState.OPEN) conn.ep.handler.onMessage(conn, data, op === 2);
  return (conn.flags & F_STOPPED) === 0;
}

/** The peer's close frame: echoed (unless ours went first), then the TCP connection is ended. */
function closeFrame(conn: LiteConn, buf: Buffer, start: number, end: number): boolean {
  const n = end - start;
  let code = 1005;
  let reason = '';
  if (n === 1) {
    conn.fail(1002, 'invalid payload length 1 for a close frame');
    return false;
  }
  if (n >= 2) {
    code = buf.readUInt16BE(start);
    if (!isValidCloseCode(code)) {
      conn.fail(1002, `invalid status code ${code}`);
      return false;
    }
    const r = buf.subarray(start + 2, end);
    if (!isUtf8(r)) {
      conn.fail(1007, 'invalid UTF-8 sequence in a close reason');
      return false;
    }
    reason = r.toString('utf8');
  }
  conn.flags |= F_CLOSE_RECEIVED | F_STOPPED;
  conn.partial = null;
  conn.frags = null;
  conn.closeCode = code;
  conn.closeReason = reason;
  if ((conn.flags & F_CLOSE_SENT) === 0) {
    conn.readyState = ReadyState.CLOSING;
    writeClose(conn, code === 1005 ? undefined : code, reason);
  }
  conn.socket.end();
  conn.socket.setTimeout(conn.ep.closeTimeoutMs);
  return false;
}
