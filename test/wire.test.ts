import test from 'ava';
import { WireError, closeCodeFor } from '../common/errors.ts';
import {
  Cmd,
  Frame,
  MAX_MESSAGE_BYTES,
  ShakeResult,
  Size,
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

const SEC = 1_795_000_000;

function roundTrip(buf: Buffer): Frame {
  const f = new Frame();
  const err = decode(buf, f);
  if (err !== 0) throw new Error(`decode failed: ${f.problem}`);
  return f;
}

test('wire: login and login reply round-trip with header fields', (t) => {
  const b = frame((buf, o) => encodeLogin(buf, o, SEC, 4_000_000_000));
  t.is(b.length, Size.LOGIN);
  t.is(b.readUInt16BE(0), 16);
  t.is(b.readUInt16BE(2), Cmd.LOGIN);
  const f = roundTrip(b);
  t.is(f.cmd, Cmd.LOGIN);
  t.is(f.seconds, SEC);
  t.is(f.userId, 4_000_000_000);
  const r = roundTrip(frame((buf, o) => encodeLoginReply(buf, o, SEC, 7, 0)));
  t.deepEqual([r.cmd, r.userId, r.result], [Cmd.LOGIN_REPLY, 7, 0]);
});

test('wire: shake, shake reply, claim, claim reply round-trip', (t) => {
  t.is(roundTrip(frame((b, o) => encodeShake(b, o, SEC, 42))).userId, 42);
  const r = roundTrip(frame((b, o) => encodeShakeReply(b, o, SEC, 42, ShakeResult.WON, 99, 1234)));
  t.deepEqual([r.cmd, r.userId, r.result, r.envelopeId, r.amount], [Cmd.SHAKE_REPLY, 42, 14, 99, 1234]);
  const c = roundTrip(frame((b, o) => encodeClaim(b, o, SEC, 5, 0x80000001)));
  t.deepEqual([c.cmd, c.userId, c.envelopeId], [Cmd.CLAIM, 5, 0x80000001]);
  const cr = roundTrip(frame((b, o) => encodeClaimReply(b, o, SEC, 0x80000001, 333)));
  t.deepEqual([cr.cmd, cr.envelopeId, cr.amount], [Cmd.CLAIM_REPLY, 0x80000001, 333]);
});

test('wire: notice carries n and exactly n users', (t) => {
  const b = frame((buf, o) => encodeNotice(buf, o, SEC, 0x80000000, 1000, [3, 9, 27]));
  t.is(b.length, Size.NOTICE3);
  const f = roundTrip(b);
  t.is(f.count, 3);
  t.deepEqual(Array.from(f.users.subarray(0, f.count)), [3, 9, 27]);
  t.is(f.amount, 1000);
});

test('wire: chat text round-trips as UTF-8 and is limited to 1 KiB', (t) => {
  const f = roundTrip(frame((b, o) => encodeChat(b, o, SEC, 1, 2, '恭喜发财 🧧')));
  t.deepEqual([f.userId, f.toUserId, f.text], [1, 2, '恭喜发财 🧧']);
  t.throws(() => frame((b, o) => encodeChat(b, o, SEC, 1, 2, 'x'.repeat(1025))), { message: /over 1024/ });
  const big = Buffer.alloc(Size.CHAT_MIN + 1025);
  big.writeUInt16BE(big.length, 0);
  big.writeUInt16BE(Cmd.CHAT, 2);
  const out = new Frame();
  t.is(decode(big, out), WireError.BAD_TEXT);
});

test('wire: error frame carries code and message, cut to 4096 bytes', (t) => {
  const f = roundTrip(frame((b, o) => encodeError(b, o, SEC, WireError.UNKNOWN_CMD, 'unknown cmd 9')));
  t.deepEqual([f.cmd, f.code, f.text], [Cmd.ERROR, WireError.UNKNOWN_CMD, 'unknown cmd 9']);
  const long = frame((b, o) => encodeError(b, o, SEC, 1, 'é'.repeat(5000)));
  t.true(long.length <= MAX_MESSAGE_BYTES);
  t.notThrows(() => new TextDecoder('utf-8', { fatal: true }).decode(long.subarray(16)));
});

test('wire: u64 seconds beyond 2^32 survive', (t) => {
  const f = roundTrip(frame((b, o) => encodeShake(b, o, 2 ** 40 + 5, 1)));
  t.is(f.seconds, 2 ** 40 + 5);
});

function raw(len: number, cmd: number, declared = len): Buffer {
  const b = Buffer.alloc(len);
  if (len >= 4) {
    b.writeUInt16BE(declared & 0xffff, 0);
    b.writeUInt16BE(cmd, 2);
  }
  return b;
}

test('wire: decode rejects every malformed shape with a named problem', (t) => {
  const f = new Frame();
  const cases: Array<[Buffer, number, RegExp]> = [
    [Buffer.alloc(5), WireError.SHORT_FRAME, /shorter than the 12-byte header/],
    [raw(4097, Cmd.CHAT, 4097), WireError.TOO_BIG, /over 4096/],
    [raw(16, Cmd.LOGIN, 20), WireError.LENGTH_MISMATCH, /says 20 bytes, frame has 16/],
    [raw(16, 9), WireError.UNKNOWN_CMD, /unknown cmd 9/],
    [raw(20, Cmd.SHAKE), WireError.BAD_BODY, /shake must be 16 bytes, got 20/],
    [raw(12, Cmd.LOGIN), WireError.BAD_BODY, /login must be 16 bytes/],
    [raw(28, Cmd.SHAKE_REPLY), WireError.BAD_BODY, /result must be 14, 15 or 17/],
    [raw(36, Cmd.NOTICE), WireError.BAD_BODY, /user count/],
  ];
  for (const [buf, code, problem] of cases) {
    t.is(decode(buf, f), code, problem.source);
    t.regex(f.problem, problem);
  }
  const badTime = frame((b, o) => encodeShake(b, o, SEC, 1));
  badTime.writeUInt32BE(0xffffffff, 4);
  t.is(decode(badTime, f), WireError.BAD_TIME);
  const badUtf8 = frame((b, o) => encodeChat(b, o, SEC, 1, 2, 'ab'));
  badUtf8[20] = 0xff;
  t.is(decode(badUtf8, f), WireError.BAD_TEXT);
});

test('wire: random bytes never throw', (t) => {
  const f = new Frame();
  let seed = 12345;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 5000; i++) {
    const len = Math.floor(rnd() * 64);
    const b = Buffer.alloc(len);
    for (let j = 0; j < len; j++) b[j] = Math.floor(rnd() * 256);
    if (len >= 2 && rnd() < 0.5) b.writeUInt16BE(len, 0);
    t.notThrows(() => decode(b, f));
  }
});

test('errors: close codes are 1007 for unparseable bytes and 1008 for policy', (t) => {
  t.is(closeCodeFor(WireError.SHORT_FRAME), 1007);
  t.is(closeCodeFor(WireError.BAD_BODY), 1007);
  t.is(closeCodeFor(WireError.TOO_BIG), 1008);
  t.is(closeCodeFor(WireError.NOT_LOGGED_IN), 1008);
});
