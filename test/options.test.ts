import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../common/errors.ts';
import { envOf, helpText, parseOptions, type CommandSpec } from '../common/options.ts';
import { agentCommand, type AgentOptions } from '../agent/options.ts';
import { chartCommand, controllerCommand, type ControllerOptions } from '../controller/options.ts';
import { demoCommand, type DemoOptions } from '../demo/options.ts';
import { stubCommand, type StubOptions } from '../stub/options.ts';

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
  writeFileSync(join(dir, 'd.json'), JSON.stringify({ port: 3001 }));
  const a = parseOptions<any>(cmd, ['--config', file], { HONGBAO_DEMO_CMD_PORT: '4000' }).options;
  t.is(a.port, 4000);
  t.is(a.mode, 'burst');
  t.deepEqual(a.sourceIp, ['127.0.0.9']);
  const b = parseOptions<any>(cmd, ['--port', '5000'], { HONGBAO_DEMO_CMD_PORT: '4000', HONGBAO_DEMO_CMD_SOURCE_IP: '127.0.0.2, 127.0.0.3' }).options;
  t.is(b.port, 5000);
  t.deepEqual(b.sourceIp, ['127.0.0.2', '127.0.0.3']);
  const bad = t.throws(() => parseOptions(cmd, [], { HONGBAO_DEMO_CMD_PORT: 'x' }))!;
  t.is(bad.message, 'hongbao demo-cmd: --port (from HONGBAO_DEMO_CMD_PORT) must be an integer from 1 to 65535, got "x"');
  t.is(parseOptions<any>(cmd, [], { HONGBAO_DEMO_CMD_CONFIG: file.replace('c.json', 'd.json') }).options.port, 3001);
  writeFileSync(file, '{"nope": 1}');
  t.regex(t.throws(() => parseOptions(cmd, ['--config', file], {}))!.message, /unknown option "nope"/);
  writeFileSync(file, '{bad');
  t.regex(t.throws(() => parseOptions(cmd, ['--config', file], {}))!.message, /is not valid JSON/);
});

test('options: help lists every flag with its env variable', (t) => {
  const text = helpText(cmd);
  for (const f of ['--port', '--mode', '--server', '--source-ip', 'HONGBAO_DEMO_CMD_SOURCE_IP', '--config', 'HONGBAO_DEMO_CMD_CONFIG']) t.true(text.includes(f), f);
});

test('options: one variable means one thing: each command reads its own HONGBAO_<COMMAND>_<FLAG>, all of them HONGBAO_TOKEN', (t) => {
  const env = { HONGBAO_DEMO_CONNECT_TIMEOUT: '600', HONGBAO_AGENT_CONNECT_TIMEOUT: '700', HONGBAO_STUB_WORKERS: '3', HONGBAO_TOKEN: 'tok' };
  t.is(parseOptions<DemoOptions>(demoCommand, [], env).options.connectTimeout, 600);
  const agent = parseOptions<AgentOptions>(agentCommand, ['--server', 'ws://127.0.0.1:1', '--users', '0:1', '--total-users', '1'], env).options;
  t.is(agent.connectTimeout, 700);
  t.is(agent.token, 'tok');
  const stub = parseOptions<StubOptions>(stubCommand, [], env).options;
  t.is(stub.workers, 3);
  t.is(stub.token, 'tok');
  t.is(parseOptions<ControllerOptions>(controllerCommand, [], env).options.token, 'tok');
  // Every variable of every command is distinct, except the shared token.
  const seen = new Map<string, string>();
  for (const c of [stubCommand, agentCommand, controllerCommand, chartCommand, demoCommand]) {
    for (const s of c.options) {
      const name = envOf(c.name, s);
      if (name !== 'HONGBAO_TOKEN') t.false(seen.has(name), `${name}: ${c.name} --${s.flag} and ${seen.get(name)}`);
      seen.set(name, `${c.name} --${s.flag}`);
    }
    t.true(helpText(c).includes(`env HONGBAO_${c.name.toUpperCase()}_CONFIG`));
  }
});

test('options: a variable of the old shared namespace is refused with the name to use', (t) => {
  const e = t.throws(() => parseOptions(demoCommand, [], { HONGBAO_CONNECT_TIMEOUT: '600' }), { instanceOf: ConfigError });
  t.is(e!.message, 'hongbao demo: HONGBAO_CONNECT_TIMEOUT is not read any more (each command has its own variables): use HONGBAO_DEMO_CONNECT_TIMEOUT');
  t.regex(t.throws(() => parseOptions(stubCommand, [], { HONGBAO_CONFIG: '/x.json' }))!.message, /HONGBAO_CONFIG is not read any more .*: use HONGBAO_STUB_CONFIG$/);
  // Another command's variable is not an old name: the demo's --stub-workers was HONGBAO_STUB_WORKERS,
  // which is now the stub's --workers; the demo leaves it alone.
  t.notThrows(() => parseOptions(demoCommand, [], { HONGBAO_STUB_WORKERS: '2', HONGBAO_AGENT_WORKERS: '2', HONGBAO_INVENTORY: 'x' }));
  t.is(parseOptions<DemoOptions>(demoCommand, [], { HONGBAO_STUB_WORKERS: '2' }).options.stubWorkers, undefined);
});
