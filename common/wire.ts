// Binary codec of the red-envelope protocol (README: Drive your own server). One message per WebSocket frame, or
// length-prefixed on raw TCP: the u16 length in the header is the whole message's length.
// Big-endian. Header: u16 length | u16 cmd | u64 unix seconds. Body: u32 fields, then text.
//
// Encoders write into a caller's buffer at an offset and return the bytes written, so hot paths
// encode into preallocated memory. decode() validates everything and fills a reusable Frame.
import { WireError } from './errors.ts';

export const HEADER_BYTES = 12;
export const MAX_MESSAGE_BYTES = 4096;
export const MAX_CHAT_TEXT_BYTES = 1024;
export const NOTICE_USERS = 3;
/** Most user ids a notice may carry (the protocol uses 3; the decoder accepts up to this). */
export const MAX_NOTICE_USERS = 16;

export const Cmd = {
  LOGIN: 0,
  LOGIN_REPLY: 1,
  SHAKE: 2,
  SHAKE_REPLY: 3,
  NOTICE: 4,
  CLAIM: 5,
  CLAIM_REPLY: 6,
  CHAT: 7,
  ERROR: 255,
} as const;

export const ShakeResult = { WON: 14, EMPTY: 15, OVERLOAD: 17 } as const;
export const LOGIN_OK = 0;

/** Fixed sizes of whole messages. */
export const Size = {
  LOGIN: HEADER_BYTES + 4,
  LOGIN_REPLY: HEADER_BYTES + 8,
  SHAKE: HEADER_BYTES + 4,
  SHAKE_REPLY: HEADER_BYTES + 16,
  NOTICE3: HEADER_BYTES + 12 + 4 * NOTICE_USERS,
  CLAIM: HEADER_BYTES + 8,
  CLAIM_REPLY: HEADER_BYTES + 8,
  CHAT_MIN: HEADER_BYTES + 8,
  ERROR_MIN: HEADER_BYTES + 4,
} as const;

const TWO_32 = 4294967296;
const MAX_SECONDS_HI = 0x1fffff; // keeps seconds below 2^53

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function header(buf: Buffer, off: number, length: number, cmd: number, seconds: number): void {
  buf.writeUInt16BE(length, off);
  buf.writeUInt16BE(cmd, off + 2);
  buf.writeUInt32BE(Math.floor(seconds / TWO_32), off + 4);
  buf.writeUInt32BE(seconds >>> 0, off + 8);
}

export function encodeLogin(buf: Buffer, off: number, seconds: number, userId: number): number {
  header(buf, off, Size.LOGIN, Cmd.LOGIN, seconds);
  buf.writeUInt32BE(userId, off + 12);
  return Size.LOGIN;
}

export function encodeLoginReply(buf: Buffer, off: number, seconds: number, userId: number, result: number): number {
  header(buf, off, Size.LOGIN_REPLY, Cmd.LOGIN_REPLY, seconds);
  buf.writeUInt32BE(userId, off + 12);
  buf.writeUInt32BE(result, off + 16);
  return Size.LOGIN_REPLY;
}

export function encodeShake(buf: Buffer, off: number, seconds: number, userId: number): number {
  header(buf, off, Size.SHAKE, Cmd.SHAKE, seconds);
  buf.writeUInt32BE(userId, off + 12);
  return Size.SHAKE;
}

export function encodeShakeReply(
  buf: Buffer,
  off: number,
  seconds: number,
  userId: number,
  result: number,
  envelopeId: number,
  amount: number,
): number {
  header(buf, off, Size.SHAKE_REPLY, Cmd.SHAKE_REPLY, seconds);
  buf.writeUInt32BE(userId, off + 12);
  buf.writeUInt32BE(result, off + 16);
  buf.writeUInt32BE(envelopeId, off + 20);
  buf.writeUInt32BE(amount, off + 24);
  return Size.SHAKE_REPLY;
}

export function encodeNotice(
  buf: Buffer,
  off: number,
  seconds: number,
  envelopeId: number,
  amount: number,
  users: ArrayLike<number>,
): number {
  const n = users.length;
  if (n < 1 || n > MAX_NOTICE_USERS) throw new RangeError(`notice names 1..${MAX_NOTICE_USERS} users, got ${n}`);
  const len = HEADER_BYTES + 12 + 4 * n;
  header(buf, off, len, Cmd.NOTICE, seconds);
  buf.writeUInt32BE(envelopeId, off + 12);
  buf.writeUInt32BE(amount, off + 16);
  buf.writeUInt32BE(n, off + 20);
  for (let i = 0; i < n; i++) buf.writeUInt32BE(users[i], off + 24 + 4 * i);
  return len;
}

export function encodeClaim(buf: Buffer, off: number, seconds: number, userId: number, envelopeId: number): number {
  header(buf, off, Size.CLAIM, Cmd.CLAIM, seconds);
  buf.writeUInt32BE(userId, off + 12);
  buf.writeUInt32BE(envelopeId, off + 16);
  return Size.CLAIM;
}

export function encodeClaimReply(buf: Buffer, off: number, seconds: number, envelopeId: number, amount: number): number {
  header(buf, off, Size.CLAIM_REPLY, Cmd.CLAIM_REPLY, seconds);
  buf.writeUInt32BE(envelopeId, off + 12);
  buf.writeUInt32BE(amount, off + 16);
  return Size.CLAIM_REPLY;
}

/** Bytes a chat message with this text takes, or -1 when the text is over 1 KiB. */
export function chatSize(text: string): number {
  const bytes = Buffer.byteLength(text, 'utf8');
  return bytes > MAX_CHAT_TEXT_BYTES ? -1 : Size.CHAT_MIN + bytes;
}

export function encodeChat(buf: Buffer, off: number, seconds: number, from: number, to: number, text: string): number {
  const len = chatSize(text);
  if (len < 0) throw new RangeError(`chat text is over ${MAX_CHAT_TEXT_BYTES} bytes`);
  header(buf, off, len, Cmd.CHAT, seconds);
  buf.writeUInt32BE(from, off + 12);
  buf.writeUInt32BE(to, off + 16);
  buf.write(text, off + 20, 'utf8');
  return len;
}

/** Encodes an error frame; the message is cut (on a character boundary) to fit 4096 bytes. */
export function encodeError(buf: Buffer, off: number, seconds: number, code: number, message: string): number {
  let text = Buffer.from(message, 'utf8');
  const room = MAX_MESSAGE_BYTES - Size.ERROR_MIN;
  if (text.length > room) text = Buffer.from(utf8Cut(text, room), 'utf8');
  const len = Size.ERROR_MIN + text.length;
  header(buf, off, len, Cmd.ERROR, seconds);
  buf.writeUInt32BE(code, off + 12);
  text.copy(buf, off + 16);
  return len;
}

function utf8Cut(bytes: Buffer, max: number): string {
  let end = max;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

/** Copy of a frame in a fresh buffer: for tests, tools and cold paths. */
export function frame(encode: (buf: Buffer, off: number) => number): Buffer {
  const buf = Buffer.allocUnsafe(MAX_MESSAGE_BYTES);
  const n = encode(buf, 0);
  return Buffer.from(buf.subarray(0, n));
}

/**
 * A decoded message. Fields are named by role; which ones are set depends on cmd:
 * login/shake: userId; login reply: userId, result; shake reply: userId, result, envelopeId, amount;
 * notice: envelopeId, amount, users[0..count); claim: userId, envelopeId; claim reply: envelopeId, amount;
 * chat: userId (from), toUserId, text; error: code, text.
 */
export class Frame {
  cmd = 0;
  seconds = 0;
  userId = 0;
  result = 0;
  envelopeId = 0;
  amount = 0;
  toUserId = 0;
  code = 0;
  count = 0;
  users = new Uint32Array(MAX_NOTICE_USERS);
  text = '';
  /** After a failed decode: what was wrong, for the error frame. */
  problem = '';
}

function fail(out: Frame, code: number, problem: string): number {
  out.problem = problem;
  return code;
}

function expectSize(out: Frame, len: number, want: number, name: string): number {
  return len === want ? 0 : fail(out, WireError.BAD_BODY, `${name} must be ${want} bytes, got ${len}`);
}

/**
 * Decodes one whole message. Returns 0 and fills `out`, or returns a WireError code with
 * `out.problem` describing it. Never throws on any input.
 */
export function decode(buf: Uint8Array, out: Frame): number {
  const len = buf.length;
  out.text = '';
  out.problem = '';
  if (len < HEADER_BYTES) return fail(out, WireError.SHORT_FRAME, `frame of ${len} bytes is shorter than the 12-byte header`);
  if (len > MAX_MESSAGE_BYTES) return fail(out, WireError.TOO_BIG, `frame of ${len} bytes is over ${MAX_MESSAGE_BYTES}`);
  const view = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const declared = view.readUInt16BE(0);
  if (declared !== len) return fail(out, WireError.LENGTH_MISMATCH, `length field says ${declared} bytes, frame has ${len}`);
  const cmd = view.readUInt16BE(2);
  const hi = view.readUInt32BE(4);
  if (hi > MAX_SECONDS_HI) return fail(out, WireError.BAD_TIME, `header seconds are beyond 2^53`);
  out.cmd = cmd;
  out.seconds = hi * TWO_32 + view.readUInt32BE(8);
  let bad: number;
  switch (cmd) {
    case Cmd.LOGIN:
    case Cmd.SHAKE:
      if ((bad = expectSize(out, len, Size.LOGIN, cmd === Cmd.LOGIN ? 'login' : 'shake'))) return bad;
      out.userId = view.readUInt32BE(12);
      return 0;
    case Cmd.LOGIN_REPLY:
      if ((bad = expectSize(out, len, Size.LOGIN_REPLY, 'login reply'))) return bad;
      out.userId = view.readUInt32BE(12);
      out.result = view.readUInt32BE(16);
      return 0;
    case Cmd.SHAKE_REPLY: {
      if ((bad = expectSize(out, len, Size.SHAKE_REPLY, 'shake reply'))) return bad;
      const result = view.readUInt32BE(16);
      if (result !== ShakeResult.WON && result !== ShakeResult.EMPTY && result !== ShakeResult.OVERLOAD) {
        return fail(out, WireError.BAD_BODY, `shake reply result must be 14, 15 or 17, got ${result}`);
      }
      out.userId = view.readUInt32BE(12);
      out.result = result;
      out.envelopeId = view.readUInt32BE(20);
      out.amount = view.readUInt32BE(24);
      return 0;
    }
    case Cmd.NOTICE: {
      if (len < HEADER_BYTES + 16) return fail(out, WireError.BAD_BODY, `notice of ${len} bytes names no user`);
      const n = view.readUInt32BE(20);
      if (n < 1 || n > MAX_NOTICE_USERS) return fail(out, WireError.BAD_BODY, `notice user count must be 1..${MAX_NOTICE_USERS}, got ${n}`);
      if ((bad = expectSize(out, len, HEADER_BYTES + 12 + 4 * n, `notice naming ${n} users`))) return bad;
      out.envelopeId = view.readUInt32BE(12);
      out.amount = view.readUInt32BE(16);
      out.count = n;
      for (let i = 0; i < n; i++) out.users[i] = view.readUInt32BE(24 + 4 * i);
      return 0;
    }
    case Cmd.CLAIM:
      if ((bad = expectSize(out, len, Size.CLAIM, 'claim'))) return bad;
      out.userId = view.readUInt32BE(12);
      out.envelopeId = view.readUInt32BE(16);
      return 0;
    case Cmd.CLAIM_REPLY:
      if ((bad = expectSize(out, len, Size.CLAIM_REPLY, 'claim reply'))) return bad;
      out.envelopeId = view.readUInt32BE(12);
      out.amount = view.readUInt32BE(16);
      return 0;
    case Cmd.CHAT: {
      if (len < Size.CHAT_MIN) return fail(out, WireError.BAD_BODY, `chat must be at least ${Size.CHAT_MIN} bytes, got ${len}`);
      if (len - Size.CHAT_MIN > MAX_CHAT_TEXT_BYTES) {
        return fail(out, WireError.BAD_TEXT, `chat text of ${len - Size.CHAT_MIN} bytes is over ${MAX_CHAT_TEXT_BYTES}`);
      }
      try {
        out.text = utf8Strict.decode(view.subarray(Size.CHAT_MIN));
      } catch {
        return fail(out, WireError.BAD_TEXT, 'chat text is not valid UTF-8');
      }
      out.userId = view.readUInt32BE(12);
      out.toUserId = view.readUInt32BE(16);
      return 0;
    }
    case Cmd.ERROR:
      if (len < Size.ERROR_MIN) return fail(out, WireError.BAD_BODY, `error must be at least ${Size.ERROR_MIN} bytes, got ${len}`);
      out.code = view.readUInt32BE(12);
      out.text = view.toString('utf8', Size.ERROR_MIN);
      return 0;
    default:
      return fail(out, WireError.UNKNOWN_CMD, `unknown cmd ${cmd}`);
  }
}

/** Unix seconds as carried in headers. */
export function unixSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}
