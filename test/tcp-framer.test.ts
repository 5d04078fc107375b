import test from 'ava';
import { LengthFramer } from '../common/tcp-framer.ts';
import { Frame, decode, encodeChat, encodeShake, frame } from '../common/wire.ts';

test('tcp-framer: splits a stream cut at every byte boundary into whole messages', (t) => {
  const msgs = [frame((b, o) => encodeShake(b, o, 1, 1)), frame((b, o) => encodeChat(b, o, 1, 1, 2, 'hello 🧧')), frame((b, o) => encodeShake(b, o, 1, 2))];
  const stream = Buffer.concat(msgs);
  for (let cut = 1; cut < stream.length; cut++) {
    const framer = new LengthFramer();
    const got: Buffer[] = [];
    t.is(framer.push(stream.subarray(0, cut), (m) => got.push(Buffer.from(m))), undefined);
    t.is(framer.push(stream.subarray(cut), (m) => got.push(Buffer.from(m))), undefined);
    t.deepEqual(got, msgs, `cut at ${cut}`);
    t.is(framer.buffered, 0);
  }
  const f = new Frame();
  t.is(decode(msgs[1], f), 0);
  t.is(f.text, 'hello 🧧');
});

test('tcp-framer: an impossible length is an error, not a hang', (t) => {
  const framer = new LengthFramer();
  t.regex(framer.push(Buffer.from([0, 3, 0, 0]), () => t.fail())!, /length 3 is outside 12..4096/);
  t.regex(new LengthFramer().push(Buffer.from([0xff, 0xff]), () => t.fail())!, /length 65535/);
});
