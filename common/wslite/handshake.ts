// The opening handshakes of the lite transport (RFC 6455 section 4; no extensions, no
// subprotocols), as functions of the bytes only: collecting a head across reads, checking the
// client's upgrade request and the server's 101, and the heads each side writes. LiteConn
// (conn.ts) drives them on its socket.
import { createHash } from 'node:crypto';

export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Largest opening-handshake request/response head accepted. */
export const MAX_HANDSHAKE_BYTES = 8 * 1024;

export function acceptKey(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

/** A complete head: its text (latin1, without the blank line) and the bytes after it, rest[restOff..]. */
export interface Head {
  head: string;
  rest: Buffer;
  restOff: number;
}

/**
 * Collects the head of a message up to \r\n\r\n from buf[off, end), the bytes so far waiting in
 * holder.partial (a copy: buf may be a reused read buffer). Returns the head once complete (and
 * clears holder.partial), undefined while more bytes are needed, null when the head is over
 * MAX_HANDSHAKE_BYTES.
 */
export function collectHead(holder: { partial: Buffer | null }, buf: Buffer, off: number, end: number): Head | undefined | null {
  let all: Buffer;
  if (holder.partial === null) all = buf.subarray(off, end);
  else all = Buffer.concat([holder.partial, buf.subarray(off, end)]);
  const i = all.indexOf('\r\n\r\n', 0, 'latin1');
  if (i < 0) {
    if (all.length > MAX_HANDSHAKE_BYTES) return null;
    holder.partial = Buffer.from(all);
    return undefined;
  }
  if (i > MAX_HANDSHAKE_BYTES) return null;
  holder.partial = null;
  return { head: all.toString('latin1', 0, i), rest: all, restOff: i + 4 };
}

/** Why a server refuses an upgrade request, and a header line to add to its 400 ('' for none). */
export interface Refusal {
  why: string;
  extra: string;
}

/**
 * Server: checks a client's upgrade request head (GET, HTTP/1.1, Upgrade: websocket, Connection:
 * upgrade, version 13, a 16-byte key; any path). Returns the client's Sec-WebSocket-Key, or why
 * the request is refused.
 */
export function checkUpgradeRequest(head: string): string | Refusal {
  const lines = head.split('\r\n');
  const m = /^([A-Z]+) (\S+) HTTP\/1\.1$/.exec(lines[0]);
  if (!m) return { why: 'malformed request line', extra: '' };
  if (m[1] !== 'GET') return { why: 'method must be GET', extra: '' };
  let upgrade = '';
  let connection = '';
  let version = '';
  let key = '';
  for (let k = 1; k < lines.length; k++) {
    const line = lines[k];
    const c = line.indexOf(':');
    if (c <= 0) return { why: 'malformed header line', extra: '' };
    const name = line.slice(0, c).trim().toLowerCase();
    const value = line.slice(c + 1).trim();
    if (name === 'upgrade') upgrade = value;
    else if (name === 'connection') connection = value;
    else if (name === 'sec-websocket-version') version = value;
    else if (name === 'sec-websocket-key') key = value;
  }
  if (upgrade.toLowerCase() !== 'websocket') return { why: 'Upgrade header must be websocket', extra: '' };
  if (!connection.split(',').some((t) => t.trim().toLowerCase() === 'upgrade')) return { why: 'Connection header must contain upgrade', extra: '' };
  if (version !== '13') return { why: 'Sec-WebSocket-Version must be 13', extra: 'Sec-WebSocket-Version: 13\r\n' };
  if (!/^[+/0-9A-Za-z]{22}==$/.test(key)) return { why: 'Sec-WebSocket-Key must be 16 bytes in base64', extra: '' };
  return key;
}

/** Server: the 101 that accepts the client's key. */
export function switchingProtocols(key: string): string {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`;
}

/** Server: the 400 that refuses an upgrade request (the connection is closed after it). */
export function badRequest(r: Refusal): string {
  const body = `Bad WebSocket handshake: ${r.why}\n`;
  return `HTTP/1.1 400 Bad Request\r\nConnection: close\r\n${r.extra}Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/**
 * Client: the fixed part of the upgrade request to `u` (path and query as given), up to the value
 * of Sec-WebSocket-Key: the connection appends its key and the blank line.
 */
export function upgradeRequestHead(u: URL): string {
  return (
    `GET ${u.pathname || '/'}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: `
  );
}

/**
 * Client: checks the server's response head to the request that sent `key`. Returns null for a
 * valid 101 (Upgrade: websocket, the right Sec-WebSocket-Accept, no extension or subprotocol),
 * else why it is refused.
 */
export function checkUpgradeResponse(head: string, key: string): string | null {
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]);
  if (!m) return `malformed status line ${JSON.stringify(lines[0].slice(0, 80))}`;
  if (m[1] !== '101') return `Unexpected server response: ${m[1]}`;
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
    else if (name === 'sec-websocket-extensions') return 'Server sent a Sec-WebSocket-Extensions header but no extension was requested';
    else if (name === 'sec-websocket-protocol') return 'Server sent a subprotocol but none was requested';
  }
  if (upgrade.toLowerCase() !== 'websocket') return 'Invalid Upgrade header';
  if (accept !== acceptKey(key)) return 'Invalid Sec-WebSocket-Accept header';
  return null;
}
