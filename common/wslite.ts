// A minimal RFC 6455 transport for the red-envelope protocol: small binary messages, one protocol
// message per frame. An alternative to the `ws` package (selected by --ws-impl lite) that keeps
// per-connection cost to one net.Socket plus one small LiteConn object:
// - no closure per connection or message: module-level socket listeners find their LiteConn under a
//   symbol on the socket; what differs between servers/clients lives in a shared LiteEndpoint;
// - a partial-frame buffer exists only while a frame is split across reads (exact size once the
//   header is known, so a long frame is never re-concatenated);
// - each outgoing frame is ONE buffer (header + payload, masked on the client side) cut from a slab:
//   one socket.write per message;
// - client sockets and adopted server sockets read into one static per-process buffer (net
//   `onread`), so a read allocates nothing.
//   Messages handed to onMessage are views valid only during the call: copy what you keep.
//
// Supported: server and client opening handshakes (no extensions, no subprotocols), opcodes
// text (1, reported with isBinary=false after a UTF-8 check), binary (2), close (8: echoed, then the
// TCP connection is ended), ping (9: answered with a pong), pong (10: ignored). Fragmented messages
// (FIN=0 + continuation frames) are reassembled up to maxPayload in total; interleaved control
// frames are handled. Lengths in the 7, 16 and 64-bit forms. A frame or message over maxPayload
// closes with 1009; protocol violations (mask bit wrong for the side, RSV bits, unknown opcode,
// fragmented or >125-byte control frame, stray continuation, bad close code) close with 1002,
// invalid UTF-8 in a text frame or a close reason with 1007 — as `ws` does, with an onError first.
//
// The same connections also speak the original experiment's raw-TCP framing (`raw`, or a tcp://
// URL): no handshake, the messages back to back, each cut by the u16 length that starts its own
// 12-byte header; a length outside 12..min(maxPayload, 65535) reports an error (closeCode 1007, or
// 1009 when too big) and ends the connection; close() is the TCP FIN. Release/adopt, timeouts and
// buffers are shared.
import { createHash, randomFillSync } from 'node:crypto';
import net from 'node:net';
import { isUtf8 } from 'node:buffer';
import { Slab } from './slab.ts';

export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
export const ReadyState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;

/** What the protocol layer uses of a connection: `ws`'s WebSocket and LiteConn both satisfy it. */
export interface MessageConn {
  readonly readyState: number;
  /** Sends one binary message (dropped when the connection is not open). */
  send(data: Buffer): void;
  close(code?: number, reason?: string): void;
}

/** Callbacks shared by every connection of a server or client (never one object per connection). */
export interface LiteHandler {
  /** Server: after the 101 is written. Client: after a valid 101. */
  onOpen(conn: LiteConn): void;
  /** `data` is only valid during the call. */
  onMessage(conn: LiteConn, data: Buffer, isBinary: boolean): void;
  /** Protocol errors (then a close frame is sent); client: connect and handshake failures. */
  onError(conn: LiteConn, err: LiteError): void;
  /** Always after onOpen (server) / always (client), once: code received, 1005 none, 1006 abnormal. */
  onClose(conn: LiteConn, code: number, reason: string): void;
  /**
   * Server side, after conn.release(): the connection left this process's hands. `handle` is the
   * socket's native handle (to pass to another process, which adopts it with adoptLite, and then to
   * close here); `rest` the bytes read past the message that released it (null: none). No onClose follows.
   */
  onRelease?(conn: LiteConn, handle: unknown, rest: Buffer | null): void;
}

export class LiteError extends Error {
  constructor(
    message: string,
    /** Close code that followed (1002, 1007, 1009), 0 for connect/handshake failures. */
    readonly closeCode = 0,
    /** The peer did not read: more than maxQueuedBytes waited for it, so the connection was dropped. */
    readonly slowReader = false,
  ) {
    super(message);
    this.name = 'LiteError';
  }
}

export interface LiteEndpointOptions {
  handler: LiteHandler;
  /** Raw-TCP framing (see LiteEndpoint.raw); a client gets it from a tcp:// URL. */
  raw?: boolean;
  /** Largest message (frame or reassembled) accepted; more closes with 1009. Default 64 KiB. */
  maxPayload?: number;
  /** Opening handshake deadline (idle time on the socket). Default 10 s. */
  handshakeTimeoutMs?: number;
  /** How long to wait for the peer's close frame / FIN after ours before destroying. Default 10 s. */
  closeTimeoutMs?: number;
  /**
   * Bytes that may wait in this process for a peer that does not read (socket.writableLength after
   * a send); beyond it the connection is dropped (onError with slowReader, then onClose), so a
   * paused reader cannot grow the process. Default 256 KiB.
   */
  maxQueuedBytes?: number;
}

/** What all connections of one server or one client share. */
interface LiteEndpoint {
  readonly isServer: boolean;
  /**
   * The original experiment's raw-TCP framing instead of WebSocket: no opening handshake, messages
   * back to back on the stream, each cut by the u16 length its own header starts with (12 to
   * min(maxPayload, 65535) bytes); closing is just the TCP FIN.
   */
  readonly raw: boolean;
  readonly handler: LiteHandler;
  readonly maxPayload: number;
  readonly handshakeTimeoutMs: number;
  readonly closeTimeoutMs: number;
  readonly maxQueuedBytes: number;
  /** Client: host/port/path and the fixed part of the upgrade request. */
  readonly host: string;
  readonly port: number;
  readonly requestHead: string;
}

const kConn = Symbol('wslite.conn');
const kEndpoint = Symbol('wslite.endpoint');

type LiteSocket = net.Socket & { [kConn]: LiteConn };
type LiteServer = net.Server & { [kEndpoint]: LiteEndpoint };

/** Largest opening-handshake request/response head accepted. */
export const MAX_HANDSHAKE_BYTES = 8 * 1024;
const DEFAULT_MAX_PAYLOAD = 64 * 1024;
const SLAB_FRAME_MAX = 16 * 1024;
/** Raw TCP: the smallest message is its header (u16 length | u16 cmd | u64 seconds). */
const RAW_HEADER_BYTES = 12;

// Connection flags.
const F_CLOSE_SENT = 1;
const F_CLOSE_RECEIVED = 2;
/** No more frames are parsed (close received or protocol error). */
const F_STOPPED = 4;
/** onError already reported (client: connect failures). */
const F_ERRORED = 8;
/** Server: onOpen ran, so onClose is due. */
const F_OPENED = 16;
/** Server: release() was called: reading stopped, `partial` collects the bytes read past the message. */
const F_RELEASED = 32;

const slab = new Slab();
/** Client and adopted-socket reads land here (net `onread`): processed synchronously, never retained. */
const readBuf = Buffer.allocUnsafe(64 * 1024);
const RAND_POOL = 8192;
const randPool = Buffer.allocUnsafe(RAND_POOL);
let randOff = RAND_POOL;

function randomOffset(n: number): number {
  if (randOff + n > RAND_POOL) {
    randomFillSync(randPool);
    randOff = 0;
  }
  const o = randOff;
  randOff += n;
  return o;
}

export function acceptKey(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

/** Close codes one may send (RFC 6455 7.4, as `ws` checks them). */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** One WebSocket connection over one net.Socket. */
export class LiteConn implements MessageConn {
  readyState: number = ReadyState.CONNECTING;
  /** Handshake bytes so far, or the partial frame (see need/have). */
  private partial: Buffer | null = null;
  /** Whole size of the partial frame once its header is known, else 0. */
  private need = 0;
  private have = 0;
  private flags = 0;
  /** Fragmented message in progress: its pieces (copies), opcode and size. */
  private frags: Buffer[] | null = null;
  private fragOp = 0;
  private fragLen = 0;
  private closeCode = 1006;
  private closeReason = '';
  /** Client: the key sent, until the 101 is checked. */
  private key = '';

  constructor(
    readonly socket: net.Socket,
    private readonly ep: LiteEndpoint,
  ) {}

  get isServer(): boolean {
    return this.ep.isServer;
  }

  /** Raw-TCP framing (no WebSocket). */
  get raw(): boolean {
    return this.ep.raw;
  }

  send(data: Buffer): void {
    if (this.readyState !== ReadyState.OPEN) return;
    if (this.ep.raw) writeRaw(this, data);
    else writeFrame(this, 0x82, data);
    if (this.socket.writableLength > this.ep.maxQueuedBytes) this.dropSlowReader();
  }

  /** The peer stopped reading and too much waits for it: report, then drop the connection at once. */
  private dropSlowReader(): void {
    const queued = this.socket.writableLength;
    this.flags |= F_STOPPED;
    this.partial = null;
    this.frags = null;
    this.readyState = ReadyState.CLOSING;
    this.ep.handler.onError(this, new LiteError(`slow reader: ${queued} bytes queued for it, more than ${this.ep.maxQueuedBytes}`, 1008, true));
    this.socket.destroy();
  }

  /** Sends a text message (tests and tools; the protocol is binary). */
  sendText(text: string): void {
    if (this.readyState !== ReadyState.OPEN) return;
    writeFrame(this, 0x81, Buffer.from(text, 'utf8'));
  }

  ping(data: Buffer = Buffer.alloc(0)): void {
    if (this.readyState !== ReadyState.OPEN) return;
    writeFrame(this, 0x89, data);
  }

  /** Starts the closing handshake (like ws: code/reason checked, reason <= 123 bytes). */
  close(code?: number, reason?: string): void {
    if (code !== undefined && (!Number.isInteger(code) || !isValidCloseCode(code))) throw new TypeError(`invalid close code ${code}`);
    if (reason !== undefined && Buffer.byteLength(reason) > 123) throw new RangeError('The close reason must not be greater than 123 bytes');
    const s = this.readyState;
    if (s === ReadyState.CLOSED) return;
    if (s === ReadyState.CONNECTING) {
      this.error(new LiteError('WebSocket was closed before the connection was established'));
      this.socket.destroy();
      return;
    }
    if (this.flags & F_CLOSE_SENT) {
      if (this.flags & F_CLOSE_RECEIVED) this.socket.end();
      return;
    }
    this.readyState = ReadyState.CLOSING;
    if (this.ep.raw) {
      // Raw TCP has no close frame: what was written goes out, then the FIN.
      this.flags |= F_CLOSE_SENT | F_STOPPED;
      this.closeCode = code ?? 1000;
      this.socket.end();
      this.socket.setTimeout(this.ep.closeTimeoutMs);
      return;
    }
    writeClose(this, code, reason ?? '');
    if (this.flags & F_CLOSE_RECEIVED) this.socket.end();
    else this.socket.setTimeout(this.ep.closeTimeoutMs);
  }

  /**
   * Server side, during onMessage: stops reading this connection so that another process can take
   * it over. Frames after the current message are not parsed; once the current read is processed
   * (next tick) and our writes are flushed, the handler's onRelease receives the native handle and
   * those bytes. Returns false when the connection cannot be released (not open, or closing).
   */
  release(): boolean {
    if (!this.ep.isServer || this.readyState !== ReadyState.OPEN || this.flags & (F_STOPPED | F_CLOSE_SENT)) return false;
    const handle = (this.socket as unknown as { _handle: { readStop(): number; reading: boolean } | null })._handle;
    if (!handle || !this.ep.handler.onRelease) return false;
    handle.readStop();
    handle.reading = false;
    this.flags |= F_RELEASED | F_STOPPED;
    process.nextTick(finishRelease, this);
    return true;
  }

  /** Released: hands the socket's native handle and the unread bytes to the handler. */
  handOver(): void {
    const socket = this.socket as net.Socket & { _handle: unknown };
    if (socket.destroyed || this.readyState !== ReadyState.OPEN) return; // it closed meanwhile: onClose ran
    if (socket.writableLength > 0) {
      // The 101 or a reply is still queued in this process: send it before the socket moves.
      socket.once('drain', () => this.handOver());
      return;
    }
    const handle = socket._handle;
    socket.removeListener('data', onSocketData); // (absent on adopted sockets: they read through onread)
    socket.removeListener('close', onSocketClose);
    socket.removeListener('error', onSocketError);
    socket.removeListener('timeout', onSocketTimeout);
    socket._handle = null; // destroy() below then frees the JS side only: the descriptor travels
    socket.destroy();
    this.readyState = ReadyState.CLOSED;
    const rest = this.partial;
    this.partial = null;
    this.ep.handler.onRelease!(this, handle, rest);
  }

  /** Keeps buf[off, end) for the process that takes a released connection over. */
  private keepRest(buf: Buffer, off: number, end: number): void {
    if (off >= end) return;
    const more = Buffer.from(buf.subarray(off, end));
    this.partial = this.partial === null ? more : Buffer.concat([this.partial, more]);
  }

  /** Destroys the socket at once (no closing handshake). */
  terminate(): void {
    if (this.readyState === ReadyState.CLOSED) return;
    if (this.readyState === ReadyState.CONNECTING) this.error(new LiteError('WebSocket was closed before the connection was established'));
    this.readyState = ReadyState.CLOSING;
    this.socket.destroy();
  }

  private error(err: LiteError): void {
    if (this.flags & F_ERRORED) return;
    this.flags |= F_ERRORED;
    this.ep.handler.onError(this, err);
  }

  /** Protocol error: report, send a close with `code`, end the TCP connection, stop reading. */
  fail(code: number, message: string): void {
    if (this.flags & F_STOPPED) return;
    this.flags |= F_STOPPED;
    this.partial = null;
    this.frags = null;
    this.ep.handler.onError(this, new LiteError(message, code));
    if (this.readyState === ReadyState.OPEN) {
      this.readyState = ReadyState.CLOSING;
      if (this.ep.raw) this.closeCode = code;
      else writeClose(this, code, '');
    }
    this.socket.end();
    this.socket.setTimeout(this.ep.closeTimeoutMs);
  }

  // ---- reading -------------------------------------------------------------------------------

  /** Bytes from the socket: buf[off, end). buf may be reused by the caller after return. */
  feed(buf: Buffer, off: number, end: number): void {
    if (this.flags & F_STOPPED) return;
    if (this.ep.raw) return this.feedRaw(buf, off, end);
    if (this.readyState === ReadyState.CONNECTING) {
      off = this.ep.isServer ? this.serverHandshake(buf, off, end) : this.clientHandshake(buf, off, end);
      if (off < 0 || off >= end) return;
    }
    const p = this.partial;
    if (p !== null) {
      if (this.need > 0) {
        const take = Math.min(this.need - this.have, end - off);
        buf.copy(p, this.have, off, off + take);
        this.have += take;
        off += take;
        if (this.have < this.need) return;
        this.partial = null;
        this.need = 0;
        this.have = 0;
        if (this.parse(p, 0, p.length) < 0) {
          if (this.flags & F_RELEASED) this.keepRest(buf, off, end);
          return;
        }
      } else {
        // Fewer than 14 bytes of a header: join with the new bytes and parse again.
        const joined = Buffer.concat([p, buf.subarray(off, end)]);
        this.partial = null;
        buf = joined;
        off = 0;
        end = joined.length;
      }
    }
    if (off >= end) return;
    const used = this.parse(buf, off, end);
    if (used < 0 || used >= end) return;
    if (this.need > 0) {
      const whole = Buffer.allocUnsafe(this.need);
      buf.copy(whole, 0, used, end);
      this.have = end - used;
      this.partial = whole;
    } else {
      this.partial = Buffer.from(buf.subarray(used, end));
    }
  }

  /** Raw TCP: cuts buf[off, end) into messages by their u16 length; keeps an incomplete tail. */
  private feedRaw(buf: Buffer, off: number, end: number): void {
    const p = this.partial;
    if (p !== null) {
      // Join the held tail with the new bytes (rare: a message split across reads).
      buf = Buffer.concat([p, buf.subarray(off, end)]);
      this.partial = null;
      off = 0;
      end = buf.length;
    }
    const max = Math.min(this.ep.maxPayload, 65535);
    while (end - off >= 2) {
      const len = buf.readUInt16BE(off);
      if (len < RAW_HEADER_BYTES || len > max) {
        // As over WebSocket: 1009 for too big, 1007 for what cannot be a message.
        this.fail(len > max ? 1009 : 1007, `message length ${len} is outside ${RAW_HEADER_BYTES}..${max}`);
        return;
      }
      if (end - off < len) break;
      const start = off;
      off += len;
      if (this.readyState === ReadyState.OPEN) this.ep.handler.onMessage(this, buf.subarray(start, off), true);
      if (this.flags & F_STOPPED) {
        if (this.flags & F_RELEASED) this.keepRest(buf, off, end);
        return;
      }
    }
    if (off < end) this.partial = Buffer.from(buf.subarray(off, end));
  }

  /**
   * Parses whole frames in buf[off, end). Returns where the first incomplete frame starts (setting
   * `need` to its size when its header is complete), or -1 once reading stopped.
   */
  private parse(buf: Buffer, off: number, end: number): number {
    const isServer = this.ep.isServer;
    while (off < end) {
      this.need = 0;
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
      if ((b0 & 0x70) !== 0) return this.stop(1002, 'RSV1, RSV2 and RSV3 must be clear');
      if (masked !== isServer) return this.stop(1002, isServer ? 'MASK must be set' : 'MASK must be clear');
      if (op >= 8) {
        if (op > 10) return this.stop(1002, `invalid opcode ${op}`);
        if ((b0 & 0x80) === 0) return this.stop(1002, 'FIN must be set on control frames');
        if (len > 125) return this.stop(1002, `invalid payload length ${len} for a control frame`);
      } else if (op === 0) {
        if (this.frags === null) return this.stop(1002, 'continuation frame without a message to continue');
        if (this.fragLen + len > this.ep.maxPayload) return this.stop(1009, 'Max payload size exceeded');
      } else if (op === 1 || op === 2) {
        if (this.frags !== null) return this.stop(1002, 'new message before the fragmented one was finished');
        if (len > this.ep.maxPayload) return this.stop(1009, 'Max payload size exceeded');
      } else {
        return this.stop(1002, `invalid opcode ${op}`);
      }
      if (masked) hl += 4;
      if (avail < hl + len) {
        this.need = hl + len;
        return off;
      }
      const start = off + hl;
      off = start + len;
      if (masked && len > 0) {
        const m = start - 4;
        for (let i = 0; i < len; i++) buf[start + i] ^= buf[m + (i & 3)];
      }
      if (!this.frame(b0, op, buf, start, off)) {
        if (this.flags & F_RELEASED) this.keepRest(buf, off, end);
        return -1;
      }
    }
    return off;
  }

  private stop(code: number, message: string): number {
    this.fail(code, message);
    return -1;
  }

  /** One whole, validated frame. Returns false once reading stopped. */
  private frame(b0: number, op: number, buf: Buffer, start: number, end: number): boolean {
    const fin = (b0 & 0x80) !== 0;
    switch (op) {
      case 2:
      case 1:
        if (fin) return this.message(op, buf.subarray(start, end));
        this.frags = [Buffer.from(buf.subarray(start, end))];
        this.fragOp = op;
        this.fragLen = end - start;
        return true;
      case 0: {
        this.frags!.push(Buffer.from(buf.subarray(start, end)));
        this.fragLen += end - start;
        if (!fin) return true;
        const whole = Buffer.concat(this.frags!, this.fragLen);
        this.frags = null;
        this.fragLen = 0;
        return this.message(this.fragOp, whole);
      }
      case 8:
        return this.closeFrame(buf, start, end);
      case 9:
        if (this.readyState === ReadyState.OPEN) writeFrame(this, 0x8a, buf.subarray(start, end));
        return true;
      default:
        return true; // pong
    }
  }

  private message(op: number, data: Buffer): boolean {
    if (op === 1 && !isUtf8(data)) {
      this.fail(1007, 'invalid UTF-8 sequence in a text frame');
      return false;
    }
    // After our close frame, data is no longer delivered (only the peer's close is awaited).
    if (this.readyState === ReadyState.OPEN) this.ep.handler.onMessage(this, data, op === 2);
    return (this.flags & F_STOPPED) === 0;
  }

  private closeFrame(buf: Buffer, start: number, end: number): boolean {
    const n = end - start;
    let code = 1005;
    let reason = '';
    if (n === 1) {
      this.fail(1002, 'invalid payload length 1 for a close frame');
      return false;
    }
    if (n >= 2) {
      code = buf.readUInt16BE(start);
      if (!isValidCloseCode(code)) {
        this.fail(1002, `invalid status code ${code}`);
        return false;
      }
      const r = buf.subarray(start + 2, end);
      if (!isUtf8(r)) {
        this.fail(1007, 'invalid UTF-8 sequence in a close reason');
        return false;
      }
      reason = r.toString('utf8');
    }
    this.flags |= F_CLOSE_RECEIVED | F_STOPPED;
    this.partial = null;
    this.frags = null;
    this.closeCode = code;
    this.closeReason = reason;
    if ((this.flags & F_CLOSE_SENT) === 0) {
      this.readyState = ReadyState.CLOSING;
      writeClose(this, code === 1005 ? undefined : code, reason);
    }
    this.socket.end();
    this.socket.setTimeout(this.ep.closeTimeoutMs);
    return false;
  }

  // ---- opening handshakes --------------------------------------------------------------------

  /** Collects the head of a message up to \r\n\r\n; returns it and sets `rest`, or '' for more. */
  private collectHead(buf: Buffer, off: number, end: number): { head: string; rest: Buffer; restOff: number } | undefined | null {
    let all: Buffer;
    if (this.partial === null) all = buf.subarray(off, end);
    else all = Buffer.concat([this.partial, buf.subarray(off, end)]);
    const i = all.indexOf('\r\n\r\n', 0, 'latin1');
    if (i < 0) {
      if (all.length > MAX_HANDSHAKE_BYTES) return null;
      this.partial = Buffer.from(all); // copy: buf may be a reused read buffer
      return undefined;
    }
    if (i > MAX_HANDSHAKE_BYTES) return null;
    this.partial = null;
    return { head: all.toString('latin1', 0, i), rest: all, restOff: i + 4 };
  }

  /** Returns the offset of the bytes after the request in the buffer that feed() then parses, or -1. */
  private serverHandshake(buf: Buffer, off: number, end: number): number {
    const got = this.collectHead(buf, off, end);
    if (got === undefined) return -1;
    if (got === null) return this.refuse('request head over 8 KiB');
    const lines = got.head.split('\r\n');
    const m = /^([A-Z]+) (\S+) HTTP\/1\.1$/.exec(lines[0]);
    if (!m) return this.refuse('malformed request line');
    if (m[1] !== 'GET') return this.refuse('method must be GET');
    let upgrade = '';
    let connection = '';
    let version = '';
    let key = '';
    for (let k = 1; k < lines.length; k++) {
      const line = lines[k];
      const c = line.indexOf(':');
      if (c <= 0) return this.refuse('malformed header line');
      const name = line.slice(0, c).trim().toLowerCase();
      const value = line.slice(c + 1).trim();
      if (name === 'upgrade') upgrade = value;
      else if (name === 'connection') connection = value;
      else if (name === 'sec-websocket-version') version = value;
      else if (name === 'sec-websocket-key') key = value;
    }
    if (upgrade.toLowerCase() !== 'websocket') return this.refuse('Upgrade header must be websocket');
    if (!connection.split(',').some((t) => t.trim().toLowerCase() === 'upgrade')) return this.refuse('Connection header must contain upgrade');
    if (version !== '13') return this.refuse('Sec-WebSocket-Version must be 13', 'Sec-WebSocket-Version: 13\r\n');
    if (!/^[+/0-9A-Za-z]{22}==$/.test(key)) return this.refuse('Sec-WebSocket-Key must be 16 bytes in base64');
    this.socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
      'latin1',
    );
    this.opened();
    if (got.restOff < got.rest.length && this.readyState === ReadyState.OPEN) this.feed(got.rest, got.restOff, got.rest.length);
    return -1;
  }

  /** Answers 400 and ends the connection. */
  private refuse(why: string, extra = ''): number {
    this.partial = null;
    this.flags |= F_STOPPED;
    const body = `Bad WebSocket handshake: ${why}\n`;
    this.socket.end(
      `HTTP/1.1 400 Bad Request\r\nConnection: close\r\n${extra}Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      'latin1',
    );
    return -1;
  }

  private clientHandshake(buf: Buffer, off: number, end: number): number {
    const got = this.collectHead(buf, off, end);
    if (got === undefined) return -1;
    if (got === null) return this.abort('server response head over 8 KiB');
    const lines = got.head.split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]);
    if (!m) return this.abort(`malformed status line ${JSON.stringify(lines[0].slice(0, 80))}`);
    if (m[1] !== '101') return this.abort(`Unexpected server response: ${m[1]}`);
    let upgrade = '';
    let accept = '';
    for (let k = 1; k < lines.length; k++) {
      const line = lines[k];
      const c = line.indexOf(':');
      if (c <= 0) continue;
      const name = line.slice(0, c).trim().toLowerCase();
      const value = line.slice(c + 1).trim();
      if (name === 'upgrade') upgrade = value;
      else if (name === 'sec-websocket-accept') accept = value;
      else if (name === 'sec-websocket-extensions') return this.abort('Server sent a Sec-WebSocket-Extensions header but no extension was requested');
      else if (name === 'sec-websocket-protocol') return this.abort('Server sent a subprotocol but none was requested');
    }
    if (upgrade.toLowerCase() !== 'websocket') return this.abort('Invalid Upgrade header');
    if (accept !== acceptKey(this.key)) return this.abort('Invalid Sec-WebSocket-Accept header');
    this.key = '';
    this.opened();
    if (got.restOff < got.rest.length && this.readyState === ReadyState.OPEN) {
      // got.rest may be the shared read buffer: frames are parsed synchronously, partials copied.
      this.feed(got.rest, got.restOff, got.rest.length);
    }
    return -1;
  }

  private abort(message: string): number {
    this.partial = null;
    this.flags |= F_STOPPED;
    this.error(new LiteError(message));
    this.socket.destroy();
    return -1;
  }

  // ---- socket events (called from the module-level listeners) -------------------------------

  /** Client: TCP connected; sends the upgrade request. */
  connected(): void {
    if (this.ep.raw) this.opened();
    else this.socket.write(this.ep.requestHead + this.key + '\r\n\r\n', 'latin1');
  }

  /**
   * The connection is open: after a valid opening handshake, at once for raw TCP, or on adoption
   * (the handshake happened in another process). Clears the handshake timeout; onOpen.
   */
  opened(): void {
    this.socket.setTimeout(0);
    this.readyState = ReadyState.OPEN;
    this.flags |= F_OPENED;
    this.ep.handler.onOpen(this);
  }

  timedOut(): void {
    if (this.readyState === ReadyState.CONNECTING && !this.ep.isServer) this.error(new LiteError('Opening handshake has timed out'));
    if (this.readyState !== ReadyState.OPEN) this.socket.destroy();
  }

  socketError(err: Error): void {
    // Like ws: after the handshake a socket error just ends in close 1006; before it, the client reports it.
    if (this.readyState === ReadyState.CONNECTING && !this.ep.isServer) this.error(new LiteError(err.message));
  }

  socketClosed(): void {
    const wasConnecting = this.readyState === ReadyState.CONNECTING;
    this.readyState = ReadyState.CLOSED;
    this.partial = null;
    this.frags = null;
    if (this.ep.isServer) {
      if (this.flags & F_OPENED) this.ep.handler.onClose(this, this.closeCode, this.closeReason);
      return;
    }
    if (wasConnecting) this.error(new LiteError('socket closed before the opening handshake completed'));
    this.ep.handler.onClose(this, this.closeCode, this.closeReason);
  }

  markCloseSent(): void {
    this.flags |= F_CLOSE_SENT;
  }

  /** Client: set before connecting. */
  setKey(key: string): void {
    this.key = key;
  }
}

/** Raw TCP: the message as it is (it carries its own length), copied so the caller may reuse it. */
function writeRaw(conn: LiteConn, data: Buffer): void {
  const n = data.length;
  const out = n <= SLAB_FRAME_MAX ? slab.take(n) : Buffer.allocUnsafe(n);
  data.copy(out, 0);
  conn.socket.write(out);
}

/** Writes one frame as one buffer (slab slice), masked on the client side. */
function writeFrame(conn: LiteConn, b0: number, payload: Buffer): void {
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

function writeClose(conn: LiteConn, code: number | undefined, reason: string): void {
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

const EMPTY = Buffer.alloc(0);

function finishRelease(conn: LiteConn): void {
  conn.handOver();
}

// ---- module-level socket listeners -------------------------------------------------------------

function onSocketData(this: net.Socket, chunk: Buffer): void {
  (this as LiteSocket)[kConn].feed(chunk, 0, chunk.length);
}

function onClientRead(this: net.Socket, nread: number, buf: Uint8Array): boolean {
  (this as LiteSocket)[kConn].feed(buf as Buffer, 0, nread);
  return true;
}

function onSocketTimeout(this: net.Socket): void {
  (this as LiteSocket)[kConn].timedOut();
}

function onSocketError(this: net.Socket, err: Error): void {
  (this as LiteSocket)[kConn].socketError(err);
}

function onSocketClose(this: net.Socket): void {
  (this as LiteSocket)[kConn].socketClosed();
}

function onClientConnect(this: net.Socket): void {
  (this as LiteSocket)[kConn].connected();
}

function onServerConnection(this: net.Server, socket: net.Socket): void {
  const ep = (this as LiteServer)[kEndpoint];
  const conn = new LiteConn(socket, ep);
  attach(socket, conn, ep.handshakeTimeoutMs);
  socket.on('data', onSocketData);
  if (ep.raw) conn.opened();
}

/** Binds a connection to its socket and arms the listeners and handshake timeout both roles share. */
function attach(socket: net.Socket, conn: LiteConn, handshakeTimeoutMs: number): void {
  (socket as LiteSocket)[kConn] = conn;
  socket.on('error', onSocketError);
  socket.on('close', onSocketClose);
  socket.on('timeout', onSocketTimeout);
  socket.setTimeout(handshakeTimeoutMs);
}

function endpoint(isServer: boolean, o: LiteEndpointOptions, host = '', port = 0, requestHead = ''): LiteEndpoint {
  return {
    isServer,
    handler: o.handler,
    maxPayload: o.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    raw: o.raw ?? false,
    handshakeTimeoutMs: o.handshakeTimeoutMs ?? 10_000,
    closeTimeoutMs: o.closeTimeoutMs ?? 10_000,
    maxQueuedBytes: o.maxQueuedBytes ?? 256 * 1024,
    host,
    port,
    requestHead,
  };
}

/** A WebSocket server on a plain net.Server (call listen() on it). Any request path is accepted. */
export function createLiteServer(o: LiteEndpointOptions & { maxConnections?: number }): net.Server {
  const server = net.createServer({ noDelay: true }) as LiteServer;
  server[kEndpoint] = endpoint(true, o);
  if (o.maxConnections) server.maxConnections = o.maxConnections;
  server.on('connection', onServerConnection);
  return server;
}

/**
 * Takes over a connection released by a lite server in another process (its native handle, passed
 * over IPC): open at once, served by `server`'s handler (onOpen is called; the server need not
 * listen). Feed `rest` to the returned connection after handling what released it.
 */
export function adoptLite(server: net.Server, handle: unknown): LiteConn {
  const ep = (server as LiteServer)[kEndpoint];
  // Reads land in the static buffer, as on the client side: nothing is allocated per read.
  const socket = new net.Socket({ handle, readable: true, writable: true, onread: { buffer: readBuf, callback: onClientRead } } as net.SocketConstructorOpts);
  const conn = new LiteConn(socket, ep);
  attach(socket, conn, 0);
  conn.opened();
  return conn;
}

/** Opens client connections to one ws:// URL; all share this object's handler and settings. */
export class LiteClient {
  private readonly ep: LiteEndpoint;

  constructor(url: string, o: LiteEndpointOptions) {
    const u = new URL(url);
    if (u.protocol !== 'ws:' && u.protocol !== 'tcp:') throw new Error(`the lite client supports ws:// and tcp:// URLs only, got ${url}`);
    if (u.protocol === 'tcp:' && !u.port) throw new Error(`a tcp:// server URL needs a port, got ${url}`);
    const port = u.port ? Number(u.port) : 80;
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (u.protocol === 'tcp:') o = { ...o, raw: true };
    const head =
      `GET ${u.pathname || '/'}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: `;
    this.ep = endpoint(false, o, host, port, head);
  }

  /** Starts a connection; the handler hears onOpen, or onError then onClose. */
  connect(localAddress?: string, localPort?: number): LiteConn {
    const ep = this.ep;
    const opts: net.NetConnectOpts = { host: ep.host, port: ep.port, noDelay: true, onread: { buffer: readBuf, callback: onClientRead } };
    if (localAddress) opts.localAddress = localAddress;
    if (localPort) opts.localPort = localPort;
    const socket = net.connect(opts);
    const conn = new LiteConn(socket, ep);
    if (!ep.raw) {
      const r = randomOffset(16);
      conn.setKey(randPool.toString('base64', r, r + 16));
    }
    attach(socket, conn, ep.handshakeTimeoutMs);
    socket.on('connect', onClientConnect);
    return conn;
  }
}
