// What every part of the lite transport shares: the ready states, the connection flags, the
// handler contract, the settings of an endpoint (one server or one client) and LiteError.
// No runtime imports: the other modules all import this one.
import type { LiteConn } from './conn.ts';

export const ReadyState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;

// Connection flags (LiteConn.flags).
export const F_CLOSE_SENT = 1;
export const F_CLOSE_RECEIVED = 2;
/** No more frames are parsed (close received or protocol error). */
export const F_STOPPED = 4;
/** onError already reported (client: connect failures). */
export const F_ERRORED = 8;
/** Server: onOpen ran, so onClose is due. */
export const F_OPENED = 16;
/** Server: release() was called: reading stopped, `partial` collects the bytes read past the message. */
export const F_RELEASED = 32;

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
  /**
   * Protocol errors (then a close frame is sent; raw TCP: the FIN), a slow reader (then the socket is
   * destroyed); client: connect and handshake failures.
   */
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
    /**
     * Close code that followed (1002, 1007, 1009), 0 for connect/handshake failures; a slow reader is
     * 1008, though its socket is destroyed without a close frame.
     */
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
export interface LiteEndpoint {
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
