// A minimal protocol client for tests: one WebSocket, frames decoded into plain objects,
// `next(cmd)` awaits the next message of a command.
import WebSocket from 'ws';
import { Cmd, Frame, decode, encodeClaim, encodeChat, encodeLogin, encodeShake, frame } from '../../common/wire.ts';

export interface Msg {
  cmd: number;
  userId: number;
  result: number;
  envelopeId: number;
  amount: number;
  toUserId: number;
  code: number;
  users: number[];
  text: string;
}

const now = () => Math.floor(Date.now() / 1000);

export class TestClient {
  readonly messages: Msg[] = [];
  private waiters: Array<{ cmd: number; resolve: (m: Msg) => void }> = [];
  closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    const f = new Frame();
    ws.on('message', (data: Buffer) => {
      const err = decode(data, f);
      if (err !== 0) throw new Error(`client got undecodable frame: ${f.problem}`);
      const m: Msg = {
        cmd: f.cmd,
        userId: f.userId,
        result: f.result,
        envelopeId: f.envelopeId,
        amount: f.amount,
        toUserId: f.toUserId,
        code: f.code,
        users: Array.from(f.users.subarray(0, f.count)),
        text: f.text,
      };
      const i = this.waiters.findIndex((w) => w.cmd === m.cmd);
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
      else this.messages.push(m);
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static open(url: string, localAddress = '127.0.0.1'): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { localAddress, perMessageDeflate: false });
      const c = new TestClient(ws);
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
    });
  }

  /** Opens a connection and logs `userId` in; resolves after the login reply. */
  static async login(url: string, userId: number, localAddress = '127.0.0.1'): Promise<TestClient> {
    const c = await TestClient.open(url, localAddress);
    c.send(frame((b, o) => encodeLogin(b, o, now(), userId)));
    const reply = await c.next(Cmd.LOGIN_REPLY);
    if (reply.userId !== userId || reply.result !== 0) throw new Error(`login of ${userId} failed: ${JSON.stringify(reply)}`);
    return c;
  }

  send(buf: Buffer | string): void {
    this.ws.send(buf);
  }

  shake(userId: number): void {
    this.send(frame((b, o) => encodeShake(b, o, now(), userId)));
  }

  claim(userId: number, envelopeId: number): void {
    this.send(frame((b, o) => encodeClaim(b, o, now(), userId, envelopeId)));
  }

  chat(from: number, to: number, text: string): void {
    this.send(frame((b, o) => encodeChat(b, o, now(), from, to, text)));
  }

  /** The next message of `cmd` (already received or still to come), within `timeoutMs`. */
  next(cmd: number, timeoutMs = 5000): Promise<Msg> {
    const i = this.messages.findIndex((m) => m.cmd === cmd);
    if (i >= 0) return Promise.resolve(this.messages.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { cmd, resolve: (m: Msg) => (clearTimeout(timer), resolve(m)) };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no message of cmd ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  close(): void {
    this.ws.close();
  }
}
