import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../common/errors.ts';
import { helpText, parseOptions, type CommandSpec } from '../common/options.ts';

const cmd: CommandSpec = {
  name: 'demo-cmd',
  summary: 's',
  usage: 'u',
  options: [
    { flag: 'port', type: 'int', min: 1, max: 65535, default: 1025, help: 'p' },
    { flag: 'mode', type: 'enum', choices: ['spread', 'burst'], default: 'spread', help: 'm' },
    { flag: 'server', type: 'url', protocols: ['ws:'], help: 's' },
    { flag: 'source-ip', type: 'string', repeat: true, help: 'ip' },
    { flag: 'verbose', type: 'bool', default: false, help: 'v' },
  ],
};

test('options: defaults, argv forms and repeats', (t) => {
  const { options } = parseOptions<any>(cmd, ['--port=2000', '--source-ip', '127.0.0.2', '--source-ip', '127.0.0.3', '--verbose'], {});
  t.deepEqual(options, { port: 2000, mode: 'spread', server: undefined, sourceIp: ['127.0.0.2', '127.0.0.3'], verbose: true });
});

test('options: invalid values name the flag, the value and the range', (t) => {
  const e1 = t.throws(() => parseOptions(cmd, ['--port', '70000'], {}), { instanceOf: ConfigError });
  t.is(e1!.message, 'hongbao demo-cmd: --port must be an integer from 1 to 65535, got "70000"');
  const e2 = t.throws(() => parseOptions(cmd, ['--mode', 'fast'], {}), { instanceOf: ConfigError });
  t.is(e2!.message, 'hongbao demo-cmd: --mode must be one of spread, burst, got "fast"');
  const e3 = t.throws(() => parseOptions(cmd, ['--server', 'http://x:1'], {}), { instanceOf: ConfigError });
  t.regex(e3!.message, /--server must be a URL \(ws:\/\/HOST:PORT\), got "http:\/\/x:1"/);
  t.regex(t.throws(() => parseOptions(cmd, ['--bogus', '1'], {}))!.message, /unknown option --bogus/);
  t.regex(t.throws(() => parseOptions(cmd, ['--port'], {}))!.message, /--port needs a value/);
  t.regex(t.throws(() => parseOptions(cmd, ['--port', '1', '--port', '2'], {}))!.message, /more than once/);
});

test('options: environment and config file, argv first', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hb-opt-'));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ port: 3000, mode: 'burst', sourceIp: ['127.0.0.9'] }));
  const a = parseOptions<any>(cmd, ['--config', file], { HONGBAO_PORT: '4000' }).options;
  t.is(a.port, 4000);
  t.is(a.mode, 'burst');
  t.deepEqual(a.sourceIp, ['127.0.0.9']);
  const b = parseOptions<any>(cmd, ['--port', '5000'], { HONGBAO_PORT: '4000', HONGBAO_SOURCE_IP: '127.0.0.2, 127.0.0.3' }).options;
  t.is(b.port, 5000);
  t.deepEqual(b.sourceIp, ['127.0.0.2', '127.0.0.3']);
  const bad = t.throws(() => parseOptions(cmd, [], { HONGBAO_PORT: 'x' }))!;
  t.is(bad.message, 'hongbao demo-cmd: --port (from HONGBAO_PORT) must be an integer from 1 to 65535, got "x"');
  writeFileSync(file, '{"nope": 1}');
  t.regex(t.throws(() => parseOptions(cmd, ['--config', file], {}))!.message, /unknown option "nope"/);
  writeFileSync(file, '{bad');
  t.regex(t.throws(() => parseOptions(cmd, ['--config', file], {}))!.message, /is not valid JSON/);
});

test('options: help lists every flag with its env variable', (t) => {
  const text = helpText(cmd);
  for (const f of ['--port', '--mode', '--server', '--source-ip', 'HONGBAO_SOURCE_IP', '--config']) t.true(text.includes(f), f);
});
