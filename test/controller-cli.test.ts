// `hongbao controller` as a process: the SNTP responder with ntp-client, a run written on SIGTERM.
import test from 'ava';
import ntp from 'ntp-client';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';
import { sntpReply, readNtpTime, startSntp } from '../controller/sntp.ts';
import { runCli, startCli, waitFor } from './helpers/process.ts';

function ntpTime(port: number): Promise<Date> {
  return new Promise((resolve, reject) =>
    ntp.getNetworkTime('127.0.0.1', port, (err, date) => (err || !date ? reject(new Error(String(err))) : resolve(date))),
  );
}

test('sntp: ntp-client reads the responder clock, skew included', async (t) => {
  const skewed = await startSntp('127.0.0.1', 0, () => Date.now() + 5000);
  t.teardown(() => skewed.close());
  const before = Date.now();
  const date = await ntpTime(skewed.port);
  const after = Date.now();
  t.true(date.getTime() >= before + 5000 - 5 && date.getTime() <= after + 5000 + 5, `${date.getTime() - before} ms ahead`);
  t.is(skewed.answered(), 1);
});

test('sntp: replies echo the originate timestamp and ignore non-client packets', (t) => {
  const req = Buffer.alloc(48);
  req[0] = 0x23; // v4, mode 3
  req.writeUInt32BE(0xdeadbeef, 40);
  req.writeUInt32BE(0x12345678, 44);
  const reply = sntpReply(req, 1_800_000_000_250, () => 1_800_000_000_500)!;
  t.is(reply[0] & 7, 4);
  t.is((reply[0] >> 3) & 7, 4);
  t.is(reply[1], 1);
  t.is(reply.readUInt32BE(24), 0xdeadbeef);
  t.is(reply.readUInt32BE(28), 0x12345678);
  t.is(Math.round(readNtpTime(reply, 32)), 1_800_000_000_250);
  t.is(Math.round(readNtpTime(reply, 40)), 1_800_000_000_500);
  const server = Buffer.from(req);
  server[0] = 0x24; // mode 4: not a request
  t.is(sntpReply(server, 0, Date.now), undefined);
  t.is(sntpReply(Buffer.alloc(10), 0, Date.now), undefined);
});

test('controller: the process serves SNTP, records a run and writes it all on SIGTERM', async (t) => {
  const results = mkdtempSync(join(tmpdir(), 'hb-ctlcli-'));
  const c = await startCli<{ port: number; ntpPort: number; runDir: string; run: string }>(t, ['controller', '--port', '0', '--ntp-serve', '0', '--results', results, '--chart-every', '2']);
  const date = await ntpTime(c.ready.ntpPort);
  t.true(Math.abs(date.getTime() - Date.now()) < 1000);
  const base = `http://127.0.0.1:${c.ready.port}`;
  const reg = await fetch(`${base}/agents`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'a1', controlUrl: 'http://127.0.0.1:1' }) });
  t.is(reg.status, 201);
  const html = await (await fetch(base + '/')).text();
  t.regex(html, /<script src="\/assets\/charts.js">/);
  const js = await fetch(base + '/assets/charts.js');
  t.is(js.status, 200);
  t.true((await js.text()).length > 100_000, "the charts' script (with Chart.js) is served from the bundle");
  await waitFor('charts rendered in a child process during the run', () => existsSync(join(c.ready.runDir, 'charts', 'client-qps.png')), 15000, 200);
  t.true(existsSync(join(c.ready.runDir, 'report.html')), 'report.html is written with the charts');
  c.child.kill('SIGTERM');
  const { code } = await c.exited;
  t.is(code, 0);
  const run = JSON.parse(readFileSync(join(c.ready.runDir, 'run.json'), 'utf8'));
  t.truthy(run.stoppedAt);
  t.deepEqual(Object.keys(run.agents), ['a1']);
  const lines = readFileSync(join(c.ready.runDir, 'series.ndjson'), 'utf8').trim().split('\n');
  t.true(lines.length >= 2, 'one line per second');
  t.true(existsSync(join(c.ready.runDir, 'summary.json')));
  t.regex(c.stdout(), /"event":"stopped"/);
});

test('controller and stub: refuse a non-loopback address without a token (their POST routes unleash load)', async (t) => {
  for (const cmd of ['controller', 'stub']) {
    const r = await runCli([cmd, '--host', '0.0.0.0', '--port', '0', ...(cmd === 'stub' ? ['--http-port', '0'] : [])], { HONGBAO_TOKEN: '' });
    t.is(r.code, 2, cmd);
    t.regex(r.stderr, new RegExp(`^hongbao ${cmd}: --host 0\\.0\\.0\\.0 is not a loopback address and no token is set`), cmd);
  }
});

test('controller and stub: a bad --host, --results or --iface is one line naming the flag and exit 2, not a crash or a hang', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['controller', '--host', '10.255.255.1', '--port', '0', '--token', 'x'], /^hongbao controller: --host 10\.255\.255\.1 is not an address of this host/],
    [['controller', '--port', '0', '--results', '/dev/null/x'], /^hongbao controller: --results \/dev\/null\/x cannot hold results: ENOTDIR/],
    [['controller', '--port', '0', '--results', '/proc/nope'], /^hongbao controller: --results \/proc\/nope cannot hold results: E[A-Z]+/],
    [['stub', '--host', '999.1.1.1', '--port', '0', '--http-port', '0'], /^hongbao stub: --host must be an IP address of this host, 0\.0\.0\.0 or localhost, got "999\.1\.1\.1"/],
    [['stub', '--iface', 'nosuchif', '--port', '0', '--http-port', '0'], /^hongbao stub: --iface nosuchif is not a network interface of this host \(there are: .*lo/],
  ];
  for (const [args, want] of cases) {
    const r = await runCli(args, { HONGBAO_TOKEN: '' });
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, want, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line\n${r.stderr}`);
  }
});

test('controller, stub and agent: a port already in use is one line naming the flag and exit 2, not a stack trace', async (t) => {
  t.timeout(60_000);
  const tcp = createServer();
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => tcp.close());
  const udp = createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => udp.close());
  const held = (tcp.address() as AddressInfo).port;
  const heldUdp = udp.address().port;
  const results = mkdtempSync(join(tmpdir(), 'hb-ports-'));
  const cases: Array<[string[], RegExp]> = [
    [['controller', '--port', String(held), '--results', results], new RegExp(`^hongbao controller: --port ${held}: TCP port ${held} on 127\\.0\\.0\\.1 is already in use: stop what holds it \\(ss -tlnp shows it\\) or choose another port`)],
    [['controller', '--port', '0', '--ntp-serve', String(heldUdp), '--results', results], new RegExp(`^hongbao controller: --ntp-serve ${heldUdp}: UDP port ${heldUdp} on 127\\.0\\.0\\.1 is already in use`)],
    [['stub', '--port', '0', '--http-port', String(held)], new RegExp(`^hongbao stub: --http-port ${held}: TCP port ${held} on 127\\.0\\.0\\.1 is already in use`)],
    [['agent', '--server', 'ws://127.0.0.1:1', '--users', '0:1', '--total-users', '1', '--workers', '1', '--control-port', String(held)], new RegExp(`^hongbao agent: --control-port ${held}: TCP port ${held} on 127\\.0\\.0\\.1 is already in use`)],
  ];
  for (const [args, want] of cases) {
    const r = await runCli(args, { HONGBAO_TOKEN: '' }, 30_000);
    t.is(r.code, 2, `${args.join(' ')}\n${r.stderr}`);
    const last = r.stderr.trim().split('\n').pop() ?? '';
    t.regex(last, want, r.stderr);
  }
});
