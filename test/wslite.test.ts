// The lite RFC 6455 transport (common/wslite.ts): interop both ways with the `ws` package, frames
// cut at every byte boundary, masking rules, ping/pong, the closing handshake, 1009 and 1002 closes,
// and the opening handshakes (400 on a bad request, a client refusing a bad 101).
import test from 'ava';
import { waitFor } from '../common/wait.ts';
import net from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { LiteClient, type LiteConn, type LiteError, type LiteHandler, acceptKey, createLiteServer } from '../common/wslite.ts';

/** Every socket a test opened or accepted: destroyed when the test ends, so the process can exit. */
const sockets = new Set<net.Socket>();
test.after.always(() => {
  for (const s of sockets) s.destroy();
  sockets.clear();
});

type Ev =
  | { t: 'open'; conn: LiteConn }
  | { t: 'message'; conn: LiteConn; data: Buffer; isBinary: boolean }
  | { t: 'error'; conn: LiteConn; err: LiteError }
  | { t: 'close'; conn: LiteConn; code: number; reason: string };

/** A handler that records every event (copies data) and can echo binary messages. */
class Recorder implements LiteHandler {
  readonly events: Ev[] = [];
  private waiters: Array<{ pred: (e: Ev) => boolean; resolve: (e: Ev) => void }> = [];
  constructor(private readonly echo = false) {}
  private push(e: Ev): void {
    this.events.push(e);
    for (const w of this.waiters.slice()) {
      if (w.pred(e)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  }
  onOpen(conn: LiteConn): void {
    this.push({ t: 'open', conn });
  }
  onMessage(conn: LiteConn, data: Buffer, isBinary: boolean): void {
    this.push({ t: 'message', conn, data: Buffer.from(data), isBinary });
    if (this.echo && isBinary) conn.send(data);
  }
  onError(conn: LiteConn, err: LiteError): void {
    this.push({ t: 'error', conn, err });
  }
  onClose(conn: LiteConn, code: number, reason: string): void {
    this.push({ t: 'close', conn, code, reason });
  }
  messages(): Buffer[] {
    return this.events.flatMap((e) => (e.t === 'message' ? [e.data] : []));
  }
  wait<T extends Ev['t']>(t: T, pred: (e: Extract<Ev, { t: T }>) => boolean = () => true, timeoutMs = 5000): Promise<Extract<Ev, { t: T }>> {
    const found = this.events.find((e) => e.t === t && pred(e as Extract<Ev, { t: T }>));
    if (found) return Promise.resolve(found as Extract<Ev, { t: T }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${t} event within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        pred: (e) => e.t === t && pred(e as Extract<Ev, { t: T }>),
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e as Extract<Ev, { t: T }>);
        },
      });
    });
  }
}

async function liteServer(t: { teardown: (f: () => void) => void }, echo = true, maxPayload = 64 * 1024) {
  const rec = new Recorder(echo);
  const server = createLiteServer({ handler: rec, maxPayload, handshakeTimeoutMs: 5000 });
  server.on('connection', (s: net.Socket) => sockets.add(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return { rec, server, port: (server.address() as AddressInfo).port };
}

/** A masked (client) or unmasked (server) frame; `form` forces the 7/16/64-bit length encoding. */
function mk(op: number, payload: Buffer, o: { fin?: boolean; mask?: boolean; form?: 7 | 16 | 64 } = {}): Buffer {
  const { fin = true, mask = true } = o;
  const n = payload.length;
  const form = o.form ?? (n < 126 ? 7 : n < 65536 ? 16 : 64);
  const head: number[] = [(fin ? 0x80 : 0) | op];
  const m = mask ? 0x80 : 0;
  if (form === 7) head.push(n | m);
  else if (form === 16) head.push(126 | m, n >> 8, n & 255);
  else head.push(127 | m, 0, 0, 0, 0, (n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255);
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i & 3]));
  return Buffer.concat([Buffer.from(head), key, body]);
}

/** Unmasked frames in a byte stream (what a lite server writes). */
function parseFrames(buf: Buffer): Array<{ op: number; fin: boolean; payload: Buffer }> {
  const out: Array<{ op: number; fin: boolean; payload: Buffer }> = [];
  let off = 0;
  while (off + 2 <= buf.length) {
    let len = buf[off + 1] & 0x7f;
    let hl = 2;
    if (len === 126) (len = buf.readUInt16BE(off + 2)), (hl = 4);
    else if (len === 127) (len = buf.readUInt32BE(off + 6)), (hl = 10);
    if (off + hl + len > buf.length) break;
    out.push({ op: buf[off] & 15, fin: (buf[off] & 0x80) !== 0, payload: buf.subarray(off + hl, off + hl + len) });
    off += hl + len;
  }
  return out;
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const upgradeRequest = (extra = '', key = KEY, version = '13', method = 'GET') =>
  `${method} /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: ${version}\r\nSec-WebSocket-Key: ${key}\r\n${extra}\r\n`;

/** A raw TCP client: everything it receives, and its end. */
async function raw(port: number) {
  const s = net.connect(port, '127.0.0.1');
  sockets.add(s);
  await once(s, 'connect');
  let got = Buffer.alloc(0);
  s.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
  const ended = new Promise<void>((r) => s.once('close', () => r()));
  return {
    s,
    got: () => got,
    ended,
    async until(pred: (b: Buffer) => boolean, timeoutMs = 3000): Promise<Buffer> {
      const end = Date.now() + timeoutMs;
      while (!pred(got)) {
        if (Date.now() > end) throw new Error(`raw client: condition not met; got ${JSON.stringify(got.toString('latin1').slice(0, 200))}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      return got;
    },
  };
}

/** A raw client past a valid handshake: returns the client and the bytes after the 101 head. */
async function rawOpen(port: number) {
  const c = await raw(port);
  c.s.write(upgradeRequest());
  await c.until((b) => b.includes('\r\n\r\n'));
  const head = c.got().toString('latin1');
  return { ...c, head, frames: () => parseFrames(c.got().subarray(c.got().indexOf('\r\n\r\n') + 4)) };
}

test('wslite: the ws client talks to a lite server (binary echo, text, ping/pong, close handshake)', async (t) => {
  const { rec, port } = await liteServer(t);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/any/path`, { perMessageDeflate: true });
  await once(ws, 'open');
  const sizes = [0, 1, 125, 126, 1000, 65535, 65536];
  for (const n of sizes) {
    const data = Buffer.alloc(n, n & 255);
    ws.send(data);
    const [echo, isBinary] = (await once(ws, 'message')) as [Buffer, boolean];
    t.true(isBinary);
    t.deepEqual(echo, data, `echo of ${n} bytes`);
  }
  ws.send('héllo 🧧');
  const text = await rec.wait('message', (e) => !e.isBinary);
  t.is(text.data.toString(), 'héllo 🧧');
  ws.ping(Buffer.from('pp'));
  const [pong] = (await once(ws, 'pong')) as [Buffer];
  t.is(pong.toString(), 'pp');
  // Fragmented message from ws: reassembled.
  ws.send(Buffer.from('abc'), { fin: false });
  ws.send(Buffer.from('def'), { fin: true });
  const [joined] = (await once(ws, 'message')) as [Buffer];
  t.is(joined.toString(), 'abcdef');
  ws.close(4000, 'bye');
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
  t.is(code, 4000, 'the close code is echoed');
  t.is(reason.toString(), 'bye');
  const closed = await rec.wait('close');
  t.is(closed.code, 4000);
  t.is(closed.reason, 'bye');
  t.is(rec.events.filter((e) => e.t === 'error').length, 0);
});

test('wslite: a lite server closes with a code and reason that the ws client sees', async (t) => {
  const { rec, port } = await liteServer(t, false);
  const ws = new WebSocket(`ws://127.0.0.1:${port}`);
  await once(ws, 'open');
  const open = await rec.wait('open');
  open.conn.send(Buffer.from([1, 2, 3]));
  open.conn.close(1008, 'NOT_LOGGED_IN');
  t.is(open.conn.readyState, 2);
  open.conn.send(Buffer.from([9])); // dropped: closing
  const [msg] = (await once(ws, 'message')) as [Buffer];
  t.deepEqual([...msg], [1, 2, 3]);
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
  t.is(code, 1008);
  t.is(reason.toString(), 'NOT_LOGGED_IN');
  const closed = await rec.wait('close');
  t.is(closed.code, 1008, 'the client echoed our close');
  t.is(closed.conn.readyState, 3);
  t.throws(() => open.conn.close(1006), { instanceOf: TypeError });
  t.throws(() => open.conn.close(1000, 'x'.repeat(124)), { instanceOf: RangeError });
});

test('wslite: a frame or a fragmented message over maxPayload closes with 1009', async (t) => {
  const { rec, port } = await liteServer(t, true, 4096);
  const ws = new WebSocket(`ws://127.0.0.1:${port}`);
  await once(ws, 'open');
  ws.send(Buffer.alloc(4096));
  t.is(((await once(ws, 'message')) as [Buffer])[0].length, 4096, 'exactly maxPayload is fine');
  ws.send(Buffer.alloc(4097));
  const [code] = (await once(ws, 'close')) as [number];
  t.is(code, 1009);
  const err = await rec.wait('error');
  t.is(err.err.closeCode, 1009);
  // Fragments summing to more than the cap.
  const ws2 = new WebSocket(`ws://127.0.0.1:${port}`);
  await once(ws2, 'open');
  ws2.send(Buffer.alloc(3000), { fin: false });
  ws2.send(Buffer.alloc(3000), { fin: true });
  t.is(((await once(ws2, 'close')) as [number])[0], 1009);
  // A 64-bit length far beyond the cap is refused on the header, before any payload.
  const r = await rawOpen(port);
  r.s.write(Buffer.from([0x82, 0xff, 0, 0, 1, 0, 0, 0, 0, 0]));
  await r.ended;
  const frames = r.frames();
  t.is(frames.at(-1)!.op, 8);
  t.is(frames.at(-1)!.payload.readUInt16BE(0), 1009);
});

test('wslite: frames cut at every byte boundary are parsed the same (server side, masked)', async (t) => {
  const { rec, port } = await liteServer(t, false);
  const r = await rawOpen(port);
  const open = await rec.wait('open');
  const conn = open.conn;
  const stream = Buffer.concat([
    mk(2, Buffer.from('hello')),
    mk(2, Buffer.alloc(300, 7)), // 16-bit length
    mk(2, Buffer.from('sixty-four'), { form: 64 }),
    mk(2, Buffer.from('frag-'), { fin: false }),
    mk(9, Buffer.from('ping in between')),
    mk(0, Buffer.from('mented'), { fin: true }),
    mk(1, Buffer.from('text ✓')),
    mk(10, Buffer.from('unsolicited pong')),
    mk(2, Buffer.alloc(0)),
  ]);
  const want = ['hello', Buffer.alloc(300, 7).toString(), 'sixty-four', 'frag-mented', 'text ✓', ''];
  const fresh = () => Buffer.from(stream); // unmasking happens in place: each feed gets its own copy
  for (let cut = 0; cut <= stream.length; cut++) {
    const before = rec.messages().length;
    const b = fresh();
    conn.feed(b, 0, cut);
    conn.feed(b, cut, b.length);
    t.deepEqual(
      rec.messages().slice(before).map((m) => m.toString()),
      want,
      `cut at ${cut}`,
    );
  }
  // One byte at a time.
  const before = rec.messages().length;
  const b = fresh();
  for (let i = 0; i < b.length; i++) conn.feed(b, i, i + 1);
  t.deepEqual(rec.messages().slice(before).map((m) => m.toString()), want, 'byte by byte');
  const text = rec.events.filter((e): e is Extract<Ev, { t: 'message' }> => e.t === 'message' && !e.isBinary);
  t.true(text.length > 0 && text.every((e) => e.data.toString() === 'text ✓'));
  // Every ping got its pong (payload echoed, unmasked).
  const frames = await r.until((g) => parseFrames(g.subarray(g.indexOf('\r\n\r\n') + 4)).filter((f) => f.op === 10).length === stream.length + 2).then(() => r.frames());
  t.true(frames.every((f) => f.op === 10 && f.payload.toString() === 'ping in between'));
  t.is(rec.events.filter((e) => e.t === 'error').length, 0);
});

test('wslite: masking rules: an unmasked client frame and an RSV bit close with 1002', async (t) => {
  const { rec, port } = await liteServer(t);
  const r = await rawOpen(port);
  r.s.write(mk(2, Buffer.from('no mask'), { mask: false }));
  await r.ended;
  const close = r.frames().at(-1)!;
  t.is(close.op, 8);
  t.is(close.payload.readUInt16BE(0), 1002);
  t.regex((await rec.wait('error')).err.message, /MASK must be set/);
  const r2 = await rawOpen(port);
  const f = mk(2, Buffer.from('x'));
  f[0] |= 0x40;
  r2.s.write(f);
  await r2.ended;
  t.is(r2.frames().at(-1)!.payload.readUInt16BE(0), 1002);
  const r3 = await rawOpen(port);
  r3.s.write(mk(0, Buffer.from('stray continuation')));
  await r3.ended;
  t.is(r3.frames().at(-1)!.payload.readUInt16BE(0), 1002);
  const r4 = await rawOpen(port);
  r4.s.write(mk(1, Buffer.from([0xc3, 0x28])));
  await r4.ended;
  t.is(r4.frames().at(-1)!.payload.readUInt16BE(0), 1007, 'invalid UTF-8 in a text frame');
});

test('wslite: a close frame is echoed and the connection ended; a close without code reports 1005', async (t) => {
  const { rec, port } = await liteServer(t);
  const r = await rawOpen(port);
  const payload = Buffer.from([0x0f, 0xa0, ...Buffer.from('done')]); // 4000 "done"
  r.s.write(mk(8, payload));
  await r.ended;
  const close = r.frames().at(-1)!;
  t.is(close.op, 8);
  t.is(close.payload.readUInt16BE(0), 4000);
  t.is(close.payload.subarray(2).toString(), 'done');
  const ev = await rec.wait('close');
  t.deepEqual([ev.code, ev.reason], [4000, 'done']);
  const r2 = await rawOpen(port);
  r2.s.write(mk(8, Buffer.alloc(0)));
  await r2.ended;
  t.is(r2.frames().at(-1)!.payload.length, 0);
  t.is((await rec.wait('close', (e) => e.code === 1005)).reason, '');
  // Abrupt end without a close frame: 1006.
  const r3 = await rawOpen(port);
  await rec.wait('open', (e) => !rec.events.some((x) => x.t === 'close' && x.conn === e.conn));
  r3.s.destroy();
  t.truthy(await rec.wait('close', (e) => e.code === 1006));
});

test('wslite: a bad opening handshake gets 400 and a closed connection', async (t) => {
  const { rec, port } = await liteServer(t);
  const cases: Array<[string, string | Buffer, RegExp]> = [
    ['plain GET', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', /Upgrade header must be websocket/],
    ['POST', upgradeRequest('', KEY, '13', 'POST'), /method must be GET/],
    ['version 8', upgradeRequest('', KEY, '8'), /Sec-WebSocket-Version must be 13/],
    ['short key', upgradeRequest('', 'abc'), /Sec-WebSocket-Key/],
    ['no Connection: upgrade', upgradeRequest().replace('keep-alive, Upgrade', 'keep-alive'), /Connection header/],
    ['head over 8 KiB', upgradeRequest(`X-Big: ${'a'.repeat(9000)}\r\n`), /over 8 KiB/],
    ['garbage', Buffer.from('\x16\x03\x01 not http at all\r\n\r\n', 'latin1'), /malformed request line/],
  ];
  for (const [name, req, why] of cases) {
    const c = await raw(port);
    c.s.write(req);
    await c.ended;
    const res = c.got().toString('latin1');
    t.regex(res, /^HTTP\/1\.1 400 Bad Request\r\n/, name);
    t.regex(res, why, name);
    if (name === 'version 8') t.regex(res, /Sec-WebSocket-Version: 13\r\n/);
  }
  t.is(rec.events.length, 0, 'refused handshakes never reach the handler');
  // fetch() sees the 400 too.
  const res = await fetch(`http://127.0.0.1:${port}/`);
  t.is(res.status, 400);
  // The accept value of RFC 6455's example.
  t.is(acceptKey(KEY), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  const ok = await rawOpen(port);
  t.regex(ok.head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  t.regex(ok.head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
  ok.s.destroy();
});

test('wslite: a silent client is dropped after the handshake timeout', async (t) => {
  const rec = new Recorder();
  const server = createLiteServer({ handler: rec, handshakeTimeoutMs: 200 });
  server.on('connection', (s: net.Socket) => sockets.add(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const c = await raw((server.address() as AddressInfo).port);
  c.s.write('GET / HTTP/1.1\r\n');
  const t0 = Date.now();
  await c.ended;
  t.true(Date.now() - t0 < 2000);
  t.is(rec.events.length, 0);
});

async function wsServer(t: { teardown: (f: () => void) => void }) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await once(wss, 'listening');
  t.teardown(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  const port = (wss.address() as AddressInfo).port;
  return { wss, port };
}

test('wslite: the lite client talks to a ws server (echo, ping, server close, local address)', async (t) => {
  const { wss, port } = await wsServer(t);
  const received: Buffer[] = [];
  let serverSide: WebSocket | undefined;
  const pongs: string[] = [];
  wss.on('connection', (ws, req) => {
    serverSide = ws;
    t.is(req.socket.remoteAddress, '127.0.0.3');
    ws.on('message', (d: Buffer, isBinary) => {
      received.push(d);
      ws.send(d, { binary: isBinary });
    });
    ws.on('pong', (d: Buffer) => pongs.push(d.toString()));
  });
  const rec = new Recorder();
  const client = new LiteClient(`ws://127.0.0.1:${port}/path?q=1`, { handler: rec, maxPayload: 128 * 1024 });
  const conn = client.connect('127.0.0.3');
  await rec.wait('open');
  t.is(conn.readyState, 1);
  for (const n of [0, 5, 125, 126, 4096, 70000]) {
    const data = Buffer.alloc(n, 0x5a);
    conn.send(data);
    const m = await rec.wait('message', (e) => e.data.length === n);
    t.true(m.isBinary);
    t.deepEqual(m.data, data);
  }
  conn.sendText('text ✓');
  t.false((await rec.wait('message', (e) => !e.isBinary)).isBinary);
  serverSide!.ping(Buffer.from('hi'));
  await waitFor('the pong', () => pongs.length > 0, 5000, 5);
  t.deepEqual(pongs, ['hi']);
  serverSide!.close(1001, 'going away');
  const closed = await rec.wait('close');
  t.deepEqual([closed.code, closed.reason], [1001, 'going away']);
  t.is(conn.readyState, 3);
  t.is(rec.events.filter((e) => e.t === 'error').length, 0);
});

test('wslite: the lite client closes cleanly; a masked server frame is a 1002', async (t) => {
  const { wss, port } = await wsServer(t);
  const serverClosed = new Promise<[number, string]>((resolve) => wss.on('connection', (ws) => ws.on('close', (c, r) => resolve([c, r.toString()]))));
  const rec = new Recorder();
  const client = new LiteClient(`ws://127.0.0.1:${port}`, { handler: rec });
  const conn = client.connect();
  await rec.wait('open');
  conn.close(4001, 'client done');
  t.deepEqual(await serverClosed, [4001, 'client done']);
  t.is((await rec.wait('close')).code, 4001);
  // A server frame with the mask bit: the client refuses it (fed directly to an open connection).
  const conn2 = client.connect();
  await rec.wait('open', (e) => e.conn === conn2);
  const bad = mk(2, Buffer.from('masked'));
  conn2.feed(bad, 0, bad.length);
  const err = await rec.wait('error', (e) => e.conn === conn2);
  t.is(err.err.closeCode, 1002);
  t.regex(err.err.message, /MASK must be clear/);
  t.truthy(await rec.wait('close', (e) => e.conn === conn2));
});

test('wslite: unmasked server frames cut at every byte boundary (client side)', async (t) => {
  const { port } = await wsServer(t);
  const rec = new Recorder();
  const conn = new LiteClient(`ws://127.0.0.1:${port}`, { handler: rec }).connect();
  await rec.wait('open');
  const stream = Buffer.concat([
    mk(2, Buffer.from('a'), { mask: false }),
    mk(2, Buffer.alloc(200, 1), { mask: false }),
    mk(2, Buffer.from('part1,'), { mask: false, fin: false }),
    mk(10, Buffer.from('pong'), { mask: false }),
    mk(0, Buffer.from('part2'), { mask: false }),
    mk(2, Buffer.from('long form'), { mask: false, form: 64 }),
  ]);
  const want = ['a', Buffer.alloc(200, 1).toString(), 'part1,part2', 'long form'];
  for (let cut = 0; cut <= stream.length; cut++) {
    const before = rec.messages().length;
    conn.feed(stream, 0, cut);
    conn.feed(stream, cut, stream.length);
    t.deepEqual(rec.messages().slice(before).map((m) => m.toString()), want, `cut at ${cut}`);
  }
  conn.terminate();
  await rec.wait('close');
});

test('wslite: the client reports refused connections, bad 101s and handshake timeouts, then closes', async (t) => {
  // Refused: a port nobody listens on.
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const deadPort = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const rec = new Recorder();
  const c1 = new LiteClient(`ws://127.0.0.1:${deadPort}`, { handler: rec }).connect();
  t.regex((await rec.wait('error', (e) => e.conn === c1)).err.message, /ECONNREFUSED/);
  t.is((await rec.wait('close', (e) => e.conn === c1)).code, 1006);
  // Servers answering wrongly.
  const answers = [
    ['HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm9wZQ==\r\n\r\n', /Invalid Sec-WebSocket-Accept/],
    ['HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n', /Unexpected server response: 403/],
    [null, /timed out/],
  ] as const;
  const bogus = net.createServer((s) => {
    s.once('data', () => {
      const a = answers[current][0];
      if (a) s.write(a);
    });
    s.on('error', () => undefined);
    sockets.add(s);
  });
  let current = 0;
  bogus.listen(0, '127.0.0.1');
  await once(bogus, 'listening');
  t.teardown(() => bogus.close());
  const url = `ws://127.0.0.1:${(bogus.address() as AddressInfo).port}`;
  // Answers that come at once get a deadline a busy machine meets; the silent server a short one.
  const patient = new LiteClient(url, { handler: rec, handshakeTimeoutMs: 10_000 });
  const hasty = new LiteClient(url, { handler: rec, handshakeTimeoutMs: 300 });
  for (current = 0; current < answers.length; current++) {
    const c = (answers[current][0] ? patient : hasty).connect();
    const err = await rec.wait('error', (e) => e.conn === c);
    t.regex(err.err.message, answers[current][1]);
    await rec.wait('close', (e) => e.conn === c);
    t.false(rec.events.some((e) => e.t === 'open' && e.conn === c));
  }
});
