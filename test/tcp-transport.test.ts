// The original experiment's raw-TCP framing: common/wslite.ts in raw mode (no handshake, messages back
// to back, cut by the u16 length of their own header) and the stub's --tcp-port, with real sockets.
import test from 'ava';
import net from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { LiteClient, createLiteServer, type LiteConn, type LiteError, type LiteHandler } from '../common/wslite.ts';
import { WireError } from '../common/errors.ts';
import {
  Cmd,
  Frame,
  ShakeResult,
  decode,
  encodeChat,
  encodeClaim,
  encodeClaimReply,
  encodeError,
  encodeLogin,
  encodeLoginReply,
  encodeNotice,
  encodeShake,
  encodeShakeReply,
  frame,
} from '../common/wire.ts';
import { startStub, waitFor } from './helpers/process.ts';
import { getJson, startAgent } from './agent-helpers.ts';

/** One message of every command of the protocol, as the raw stream carries them. */
const EVERY = [
  frame((b, o) => encodeLogin(b, o, 1, 7)),
  frame((b, o) => encodeLoginReply(b, o, 1, 7, 0)),
  frame((b, o) => encodeShake(b, o, 2, 7)),
  frame((b, o) => encodeShakeReply(b, o, 2, 7, ShakeResult.WON, 11, 1234)),
  frame((b, o) => encodeNotice(b, o, 3, 2 ** 31, 1000, [7, 8, 9])),
  frame((b, o) => encodeClaim(b, o, 3, 7, 2 ** 31)),
  frame((b, o) => encodeClaimReply(b, o, 3, 2 ** 31, 333)),
  frame((b, o) => encodeChat(b, o, 4, 7, 8, 'hello 🧧')),
  frame((b, o) => encodeError(b, o, 5, WireError.UNKNOWN_CMD, 'UNKNOWN_CMD: test')),
];

class Recorder implements LiteHandler {
  readonly opened: LiteConn[] = [];
  readonly messages: Buffer[] = [];
  readonly errors: LiteError[] = [];
  closed = 0;
  onOpen(conn: LiteConn): void {
    this.opened.push(conn);
  }
  onMessage(_conn: LiteConn, data: Buffer): void {
    this.messages.push(Buffer.from(data));
  }
  onError(_conn: LiteConn, err: LiteError): void {
    this.errors.push(err);
  }
  onClose(): void {
    this.closed++;
  }
}

/** A raw-TCP lite server on 127.0.0.1, closed with the test. */
async function rawServer<H extends LiteHandler>(t: { teardown: (f: () => void) => void }, rec: H) {
  const server = createLiteServer({ handler: rec, raw: true, maxPayload: 4096 });
  const sockets: net.Socket[] = [];
  server.on('connection', (s: net.Socket) => sockets.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { rec, port: (server.address() as AddressInfo).port };
}

test('tcp framing: every message type, cut at every byte boundary and byte by byte, arrives whole', async (t) => {
  const { rec, port } = await rawServer(t, new Recorder());
  const clientRec = new Recorder();
  const client = new LiteClient(`tcp://127.0.0.1:${port}`, { handler: clientRec });
  const c = client.connect();
  t.teardown(() => c.terminate());
  await waitFor('both ends open', async () => rec.opened.length === 1 && clientRec.opened.length === 1);
  const conn = rec.opened[0];
  const stream = Buffer.concat(EVERY);
  for (let cut = 0; cut <= stream.length; cut++) {
    const before = rec.messages.length;
    const b = Buffer.from(stream);
    conn.feed(b, 0, cut);
    conn.feed(b, cut, b.length);
    t.deepEqual(rec.messages.slice(before), EVERY, `cut at ${cut}`);
  }
  const before = rec.messages.length;
  for (let i = 0; i < stream.length; i++) conn.feed(stream, i, i + 1);
  t.deepEqual(rec.messages.slice(before), EVERY, 'byte by byte');
  // Every message decodes as what it was (the framing neither adds nor removes a byte).
  const f = new Frame();
  t.deepEqual(
    rec.messages.slice(before).map((m) => (decode(m, f), f.cmd)),
    [Cmd.LOGIN, Cmd.LOGIN_REPLY, Cmd.SHAKE, Cmd.SHAKE_REPLY, Cmd.NOTICE, Cmd.CLAIM, Cmd.CLAIM_REPLY, Cmd.CHAT, Cmd.ERROR],
  );
  // The other way: what the server sends reaches the client as the same messages, in order.
  for (const m of EVERY) conn.send(m);
  await waitFor('client got every message', async () => clientRec.messages.length === EVERY.length);
  t.deepEqual(clientRec.messages, EVERY);
  t.is(rec.errors.length + clientRec.errors.length, 0);
});

test('tcp framing: a length no message can have is an error and a closed connection, never a hang', async (t) => {
  const { rec, port } = await rawServer(t, new Recorder());
  for (const [bytes, code, why] of [
    [[0, 3, 0, 0], 1007, /length 3 is outside 12\.\.4096/],
    [[0xff, 0xff], 1009, /length 65535 is outside 12\.\.4096/],
  ] as const) {
    const s = net.connect(port, '127.0.0.1');
    t.teardown(() => s.destroy());
    await once(s, 'connect');
    s.write(Buffer.from(bytes));
    await once(s, 'end');
    const err = rec.errors.at(-1)!;
    t.is(err.closeCode, code);
    t.regex(err.message, why);
  }
  await waitFor('both closed', async () => rec.closed === 2);
});

/** A raw-TCP client of the stub: what it received, decoded. */
async function tcpClient(t: { teardown: (f: () => void) => void }, port: number) {
  const s = net.connect(port, '127.0.0.1');
  t.teardown(() => s.destroy());
  await once(s, 'connect');
  let got = Buffer.alloc(0);
  let ended = false;
  s.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
  s.on('end', () => (ended = true));
  const messages = () => {
    const out: Array<{ cmd: number; userId: number; result: number; code: number; text: string }> = [];
    const f = new Frame();
    for (let off = 0; off + 2 <= got.length; ) {
      const len = got.readUInt16BE(off);
      if (off + len > got.length) break;
      decode(got.subarray(off, off + len), f);
      out.push({ cmd: f.cmd, userId: f.userId, result: f.result, code: f.code, text: f.text });
      off += len;
    }
    return out;
  };
  return { s, messages, ended: () => ended };
}

test('stub --tcp-port: login and shakes over raw TCP, pipelined behind the login across a hand-over; bad input closes one connection', async (t) => {
  t.timeout(30_000);
  const stub = await startStub(t, ['--workers', '2', '--tcp-port', '0']);
  const port = stub.ready.tcpPort!;
  t.true(port > 0);
  // Login and two shakes in one write: users 0..15 belong to both workers, and the kernel deals the
  // connections to both acceptors, so some (all but surely: 1 in 2^16 that none) are handed over
  // with the shakes still unread.
  const clients = await Promise.all(Array.from({ length: 16 }, () => tcpClient(t, port)));
  clients.forEach((c, u) =>
    c.s.write(Buffer.concat([frame((b, o) => encodeLogin(b, o, 1, u)), frame((b, o) => encodeShake(b, o, 1, u)), frame((b, o) => encodeShake(b, o, 1, u))])),
  );
  for (const [u, c] of clients.entries()) {
    const ms = await waitFor(`user ${u}: login reply and 2 shake replies`, async () => (c.messages().length >= 3 ? c.messages() : undefined));
    t.deepEqual(
      ms.map((m) => [m.cmd, m.userId]),
      [
        [Cmd.LOGIN_REPLY, u],
        [Cmd.SHAKE_REPLY, u],
        [Cmd.SHAKE_REPLY, u],
      ],
    );
  }
  // Workers report their connections once a second (the wait is the assertion).
  await waitFor('the stub to count 16 connections, some of them handed over', async () => {
    const h = (await stub.get('/health')).body;
    return h.connections === 16 && h.workers.reduce((n: number, w: { adopted: number }) => n + w.adopted, 0) > 0;
  });

  // Bad input, each on its own connection: an error message where the framing allows one, then the FIN.
  const cases: Array<[string, Buffer, number]> = [
    ['a length field shorter than the header', Buffer.from([0, 5, 0, 1, 0, 0, 0, 0]), WireError.SHORT_FRAME],
    ['a message over the 4 KiB limit', Buffer.from([0x20, 0x00, 0, 1]), WireError.TOO_BIG],
    ['an unknown cmd', (() => {
      const m = frame((b, o) => encodeShake(b, o, 1, 50));
      m.writeUInt16BE(77, 2);
      return m;
    })(), WireError.UNKNOWN_CMD],
    ['a length that lies about the body', (() => {
      const m = frame((b, o) => encodeLogin(b, o, 1, 51));
      m.writeUInt16BE(m.length + 4, 0); // four more bytes than a login has, and they follow
      return Buffer.concat([m, Buffer.alloc(4)]);
    })(), WireError.BAD_BODY],
  ];
  for (const [what, bytes, code] of cases) {
    const c = await tcpClient(t, port);
    c.s.write(bytes);
    await waitFor(`${what}: answered and closed`, async () => c.ended());
    const ms = c.messages();
    t.is(ms.length, 1, what);
    t.is(ms[0].cmd, Cmd.ERROR, what);
    t.is(ms[0].code, code, `${what}: ${ms[0].text}`);
  }
  // The server is fine: the first sixteen connections still shake.
  clients[0].s.write(frame((b, o) => encodeShake(b, o, 1, 0)));
  await waitFor('one more shake reply', async () => clients[0].messages().length === 4);
  await waitFor('still 16 connections, the bad ones gone', async () => (await stub.get('/health')).body.connections === 16);
});

/**
 * A server that behaves as the original Go server does where it differs from ours: some shakes are
 * answered by a notice (cmd 4) naming other users instead of a shake reply, won replies carry user 0.
 */
async function originalLike(t: { teardown: (f: () => void) => void }) {
  let shakes = 0;
  const f = new Frame();
  const handler: LiteHandler = {
    onOpen() {},
    onMessage(conn, data) {
      if (decode(data, f) !== 0) return;
      const s = Math.floor(Date.now() / 1000);
      if (f.cmd === Cmd.LOGIN) conn.send(frame((b, o) => encodeLoginReply(b, o, s, f.userId, 0)));
      else if (f.cmd === Cmd.SHAKE) {
        const k = shakes++ % 3;
        if (k === 0) conn.send(frame((b, o) => encodeNotice(b, o, s, 2 ** 21 + shakes, 100, [900_001, 900_002, 900_003])));
        else if (k === 1) conn.send(frame((b, o) => encodeShakeReply(b, o, s, 0, ShakeResult.WON, 2 ** 20, 50)));
        else conn.send(frame((b, o) => encodeShakeReply(b, o, s, f.userId, ShakeResult.EMPTY, 0, 0)));
      }
    },
    onError() {},
    onClose() {},
  };
  return (await rawServer(t, handler)).port;
}

interface AgentSecond {
  second: number;
  sent: number;
  answered: number;
  won: number;
  missed: number;
  errors: number;
}

test('agent --notice-answers-shake: against a server that answers shakes with notices (as the original does), every shake counts answered', async (t) => {
  t.timeout(40_000);
  const port = await originalLike(t);
  const run = async (extra: string[]) => {
    const a = await startAgent(t, ['--server', `tcp://127.0.0.1:${port}`, '--users', '0:60', '--total-users', '60', '--qps', '30', '--workers', '1', ...extra]);
    await a.proc.event('connected', 15_000);
    const from = Math.floor(Date.now() / 1000) + 1;
    const body = await waitFor(
      '4 complete seconds',
      async () => {
        const b = await getJson<{ seconds: AgentSecond[] }>(`${a.url}/stats?since=${from}`);
        return b.seconds.filter((s) => s.sent > 0).length >= 4 ? b.seconds.filter((s) => s.sent > 0).slice(0, 4) : undefined;
      },
      20_000,
    );
    await a.proc.kill('SIGTERM');
    return body;
  };
  const coping = await run(['--notice-answers-shake']);
  for (const s of coping) {
    t.is(s.sent, 30, `second ${s.second}`);
    t.is(s.answered, 30, `second ${s.second}: notices answered their shakes`);
    t.is(s.missed + s.errors, 0);
    t.true(s.won >= 10, `second ${s.second}: won replies and notices count as won`);
  }
  // Without the flag the notices answer nothing: a third of the shakes stay unanswered.
  const plain = await run([]);
  t.true(plain.some((s) => s.answered < s.sent), JSON.stringify(plain));
});

test('stub: a client that stops reading is dropped once 256 KiB wait for it, counted in slowReaders; the sender is still served', async (t) => {
  t.timeout(60_000);
  const stub = await startStub(t, ['--tcp-port', '0']);
  const port = stub.ready.tcpPort!;
  const reader = await tcpClient(t, port);
  reader.s.write(frame((b, o) => encodeLogin(b, o, 1, 5)));
  await waitFor('reader logged in', async () => reader.messages().length === 1);
  reader.s.pause(); // reads nothing from now on
  const sender = await tcpClient(t, port);
  sender.s.write(frame((b, o) => encodeLogin(b, o, 1, 6)));
  await waitFor('sender logged in', async () => sender.messages().length === 1);
  // ~1 KiB chats to the paused reader, until the stub gives up on it (kernel buffers take a few MB first).
  const chat = frame((b, o) => encodeChat(b, o, 1, 6, 5, 'x'.repeat(1000)));
  const batch = Buffer.concat(Array.from({ length: 256 }, () => chat));
  const slow = async () => {
    const s = (await stub.get('/stats?since=0')).body as { seconds: Array<{ slowReaders: number }> };
    return s.seconds.reduce((n, x) => n + x.slowReaders, 0);
  };
  let sentMb = 0;
  for (let i = 0; i < 200 && (await slow()) === 0; i++) {
    if (!sender.s.write(batch)) await once(sender.s, 'drain');
    sentMb += batch.length / 2 ** 20;
    await new Promise((r) => setTimeout(r, 20));
  }
  await waitFor('one slow reader counted', async () => (await slow()) === 1, 10_000);
  t.true(sentMb < 60, `${sentMb.toFixed(1)} MB of chat before the drop`);
  await waitFor('only the sender is left', async () => (await stub.get('/health')).body.connections === 1, 10_000);
  sender.s.write(frame((b, o) => encodeShake(b, o, 1, 6)));
  await waitFor('the sender still gets its shake reply', async () => sender.messages().some((m) => m.cmd === Cmd.SHAKE_REPLY), 10_000);
});
