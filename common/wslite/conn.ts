// LiteConn, the one object a connection costs besides its net.Socket: its state, what the
// application calls (send, close, release, ...), the opening handshakes driven on the socket, and the
// socket events. The parser state lives in fields of this object too (receiver.ts reads and writes
// them), never in an object per connection or message.
//
// The socket listeners are module-level functions that find their LiteConn under a symbol on the
// socket: no closure per connection. What differs between servers and clients lives in the shared
// LiteEndpoint (endpoint.ts builds them).
import type net from 'node:net';
import { badRequest, checkUpgradeRequest, checkUpgradeResponse, collectHead, switchingProtocols, type Refusal } from './handshake.ts';
import { receive } from './receiver.ts';
import { isValidCloseCode, writeClose, writeFrame, writeRaw } from './sender.ts';
import {
  F_CLOSE_RECEIVED,
  F_CLOSE_SENT,
  F_ERRORED,
  F_OPENED,
  F_RELEASED,
  F_STOPPED,
  LiteError,
  ReadyState,
  type LiteEndpoint,
  type MessageConn,
} from './shared.ts';

const kConn = Symbol('wslite.conn');
type LiteSocket = net.Socket & { [kConn]: LiteConn };

/** One WebSocket (or raw-TCP) connection over one net.Socket. */
export class LiteConn implements MessageConn {
  readyState: number = ReadyState.CONNECTING;
  // Fields below marked @internal are the transport's own (the receiver's parser state and the
  // flags): public only so that receiver.ts can reach them without an object of its own.
  /** @internal Handshake bytes so far, the partial frame (see need/have), or after release() the unread bytes. */
  partial: Buffer | null = null;
  /** @internal Whole size of the partial frame once its header is known, else 0. */
  need = 0;
  /** @internal Bytes of the partial frame received so far. */
  have = 0;
  /** @internal F_* flags (shared.ts). */
  flags = 0;
  /** @internal Fragmented message in progress: its pieces (copies), opcode and size. */
  frags: Buffer[] | null = null;
  /** @internal */
  fragOp = 0;
  /** @internal */
  fragLen = 0;
  /** @internal Close code and reason reported to onClose: received, sent (raw TCP), or 1006. */
  closeCode = 1006;
  /** @internal */
  closeReason = '';
  /** Client: the key sent, until the 101 is checked. */
  private key = '';

  constructor(
    readonly socket: net.Socket,
    /** @internal What this connection shares with its server or client. */
    readonly ep: LiteEndpoint,
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

  /**
   * Starts the closing handshake (like ws: code/reason checked, reason <= 123 bytes). Raw TCP has
   * no close frame: what was written goes out, then the FIN.
   */
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
    detach(socket);
    socket._handle = null; // destroy() below then frees the JS side only: the descriptor travels
    socket.destroy();
    this.readyState = ReadyState.CLOSED;
    const rest = this.partial;
    this.partial = null;
    this.ep.handler.onRelease!(this, handle, rest);
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

  /** Protocol error: report, send a close with `code` (raw TCP: none), end the TCP connection, stop reading. */
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

  /** Bytes from the socket: buf[off, end). buf may be reused by the caller after return. */
  feed(buf: Buffer, off: number, end: number): void {
    receive(this, buf, off, end);
  }

  // ---- opening handshakes (the receiver hands them the bytes while CONNECTING) -----------------

  /**
   * @internal Server: collects the upgrade request; answers 101 and opens (then parses the bytes
   * read after the request), or answers 400 and ends the connection.
   */
  serverHandshake(buf: Buffer, off: number, end: number): void {
    const got = collectHead(this, buf, off, end);
    if (got === undefined) return;
    if (got === null) return this.refuse({ why: 'request head over 8 KiB', extra: '' });
    const key = checkUpgradeRequest(got.head);
    if (typeof key !== 'string') return this.refuse(key);
    this.socket.write(switchingProtocols(key), 'latin1');
    this.opened();
    if (got.restOff < got.rest.length && this.readyState === ReadyState.OPEN) receive(this, got.rest, got.restOff, got.rest.length);
  }

  /** Answers 400 and ends the connection. */
  private refuse(r: Refusal): void {
    this.partial = null;
    this.flags |= F_STOPPED;
    this.socket.end(badRequest(r), 'latin1');
  }

  /**
   * @internal Client: collects the server's response; opens on a valid 101 (then parses the bytes
   * read after it), else reports the error and destroys the socket.
   */
  clientHandshake(buf: Buffer, off: number, end: number): void {
    const got = collectHead(this, buf, off, end);
    if (got === undefined) return;
    if (got === null) return this.abort('server response head over 8 KiB');
    const why = checkUpgradeResponse(got.head, this.key);
    if (why !== null) return this.abort(why);
    this.key = '';
    this.opened();
    if (got.restOff < got.rest.length && this.readyState === ReadyState.OPEN) {
      // got.rest may be the shared read buffer: frames are parsed synchronously, partials copied.
      receive(this, got.rest, got.restOff, got.rest.length);
    }
  }

  private abort(message: string): void {
    this.partial = null;
    this.flags |= F_STOPPED;
    this.error(new LiteError(message));
    this.socket.destroy();
  }

  // ---- socket events (called from the module-level listeners) -------------------------------

  /** Client: TCP connected; sends the upgrade request (raw TCP: open at once). */
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

function finishRelease(conn: LiteConn): void {
  conn.handOver();
}

// ---- module-level socket listeners -------------------------------------------------------------

/** Server sockets: 'data' events. */
export function onSocketData(this: net.Socket, chunk: Buffer): void {
  receive((this as LiteSocket)[kConn], chunk, 0, chunk.length);
}

/** Client and adopted sockets: net `onread` into a static buffer (see endpoint.ts). */
export function onSocketRead(this: net.Socket, nread: number, buf: Uint8Array): boolean {
  receive((this as LiteSocket)[kConn], buf as Buffer, 0, nread);
  return true;
}

/** Client sockets: 'connect'. */
export function onSocketConnect(this: net.Socket): void {
  (this as LiteSocket)[kConn].connected();
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

/** Binds a connection to its socket and arms the listeners and handshake timeout all roles share. */
export function attach(socket: net.Socket, conn: LiteConn, handshakeTimeoutMs: number): void {
  (socket as LiteSocket)[kConn] = conn;
  socket.on('error', onSocketError);
  socket.on('close', onSocketClose);
  socket.on('timeout', onSocketTimeout);
  socket.setTimeout(handshakeTimeoutMs);
}

/** Released: the socket's events no longer reach its connection. */
function detach(socket: net.Socket): void {
  socket.removeListener('data', onSocketData); // (absent on adopted sockets: they read through onread)
  socket.removeListener('close', onSocketClose);
  socket.removeListener('error', onSocketError);
  socket.removeListener('timeout', onSocketTimeout);
}
