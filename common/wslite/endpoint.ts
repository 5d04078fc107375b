// Servers and clients of the lite transport: each holds one LiteEndpoint (handler and settings)
// that all its connections share, so a connection costs one net.Socket plus one LiteConn.
// Client sockets and adopted server sockets read into one static per-process buffer (net
// `onread`), so a read allocates nothing; the receiver copies what must outlive the read.
import net from 'node:net';
import { attach, LiteConn, onSocketConnect, onSocketData, onSocketRead } from './conn.ts';
import { upgradeRequestHead } from './handshake.ts';
import { randomBase64 } from './sender.ts';
import type { LiteEndpoint, LiteEndpointOptions } from './shared.ts';

const kEndpoint = Symbol('wslite.endpoint');
type LiteServer = net.Server & { [kEndpoint]: LiteEndpoint };

const DEFAULT_MAX_PAYLOAD = 64 * 1024;

/** Client and adopted-socket reads land here (net `onread`): processed synchronously, never retained. */
const readBuf = Buffer.allocUnsafe(64 * 1024);

function onServerConnection(this: net.Server, socket: net.Socket): void {
  const ep = (this as LiteServer)[kEndpoint];
  const conn = new LiteConn(socket, ep);
  attach(socket, conn, ep.handshakeTimeoutMs);
  socket.on('data', onSocketData);
  if (ep.raw) conn.opened();
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

/** A WebSocket server (raw: a raw-TCP one) on a plain net.Server (call listen() on it). Any request path is accepted. */
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
  const socket = new net.Socket({ handle, readable: true, writable: true, onread: { buffer: readBuf, callback: onSocketRead } } as net.SocketConstructorOpts);
  const conn = new LiteConn(socket, ep);
  attach(socket, conn, 0);
  conn.opened();
  return conn;
}

/** Opens client connections to one ws:// (or tcp://) URL; all share this object's handler and settings. */
export class LiteClient {
  private readonly ep: LiteEndpoint;

  constructor(url: string, o: LiteEndpointOptions) {
    const u = new URL(url);
    if (u.protocol !== 'ws:' && u.protocol !== 'tcp:') throw new Error(`the lite client supports ws:// and tcp:// URLs only, got ${url}`);
    if (u.protocol === 'tcp:' && !u.port) throw new Error(`a tcp:// server URL needs a port, got ${url}`);
    const port = u.port ? Number(u.port) : 80;
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (u.protocol === 'tcp:') o = { ...o, raw: true };
    this.ep = endpoint(false, o, host, port, upgradeRequestHead(u));
  }

  /** Starts a connection; the handler hears onOpen, or onError then onClose. */
  connect(localAddress?: string, localPort?: number): LiteConn {
    const ep = this.ep;
    const opts: net.NetConnectOpts = { host: ep.host, port: ep.port, noDelay: true, onread: { buffer: readBuf, callback: onSocketRead } };
    if (localAddress) opts.localAddress = localAddress;
    if (localPort) opts.localPort = localPort;
    const socket = net.connect(opts);
    const conn = new LiteConn(socket, ep);
    if (!ep.raw) conn.setKey(randomBase64(16));
    attach(socket, conn, ep.handshakeTimeoutMs);
    socket.on('connect', onSocketConnect);
    return conn;
  }
}
