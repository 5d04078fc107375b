// provisioning netns: the fleet scripts against network namespaces on this machine, as real
// processes. Each test brings up its own run (unique run id), and t.teardown always tears it down.
// Skips, saying why, where iproute2 or curl is missing or network namespaces are not permitted.
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runProcess, startCli, waitFor, type Ran } from './helpers/process.ts';
import { needing } from './helpers/tools.ts';
import { P, inNs, kv, linksOf, namespacesOf, near, netnsPermitted as permitted, netnsWhy as notPermittedWhy, peers, processesOf, runId, shakesAround, snapshotBundle } from './helpers/netns.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function sh(args: string[], timeoutMs = 30000): Promise<Ran> {
  return runProcess('bash', args, { cwd: P, timeoutMs });
}

const netns = (...a: string[]) => sh([join(P, 'netns.sh'), ...a]);
let bundlePath = '';
const fleet = (run: string, inv: string, ...a: string[]) => sh([join(P, 'fleet.sh'), '--transport', 'netns', '--run-id', run, '--inventory', inv, ...(bundlePath ? ['--dist', bundlePath] : []), ...a], 45000);

/** Brings a run up; registers its teardown (and checks that nothing of it is left). */
async function bringUp(t: ExecutionContext, run: string, count: number, ips: number) {
  t.teardown(async () => {
    const down = await netns('down', '--run-id', run);
    if (down.code !== 0) console.error(`netns.sh down --run-id ${run}: ${down.stderr}`);
  });
  const up = await netns('up', '--run-id', run, '--count', String(count), '--ips', String(ips));
  t.is(up.code, 0, up.stderr);
  return { layout: up.stdout, bridgeIp: kv(up.stdout, 'bridge_ip') };
}

// Skipped tests say why in their title, and what it takes to run them.
const tools = needing([['ip', 'iproute2'], ['curl', 'curl']], true);
const netnsWhy = tools.why || notPermittedWhy;
// A broken build fails these tests (it is not a reason to skip them).
const netnsTest = (title: string, fn: (t: ExecutionContext) => Promise<void>) => (permitted ? tools.test : test.skip)(title + netnsWhy, fn);

netnsTest('provisioning netns: bring-up gives each namespace its addresses, sysctls and a path to the stub; teardown leaves nothing', async (t) => {
  const run = runId('nb');
  const hostRange = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
  const hostSomaxconn = readFileSync('/proc/sys/net/core/somaxconn', 'utf8');
  const { layout, bridgeIp } = await bringUp(t, run, 3, 2);
  t.regex(bridgeIp, /^198\.1[89]\.\d+\.1$/);
  const base = bridgeIp.split('.').slice(0, 2).join('.') + '.';
  const third = Number(bridgeIp.split('.')[2]);
  t.deepEqual(namespacesOf(run).sort(), [`hb-${run}-vm1`, `hb-${run}-vm2`, `hb-${run}-vm3`]);
  t.deepEqual(linksOf(run).sort(), [`: hb${run}br`, `: hb${run}v1`, `: hb${run}v2`, `: hb${run}v3`]);

  // Idempotent: a second up changes nothing.
  const again = await netns('up', '--run-id', run, '--count', '3', '--ips', '2', '--inventory', `/tmp/hongbao-netns/${run}/inventory`, '--server-port', '1', '--users-per-vm', '10');
  t.is(again.code, 0, again.stderr);
  t.is(again.stderr.match(/^unchanged /gm)?.length, 4, again.stderr);
  t.is(again.stderr.match(/^created /gm), null);
  t.is(kv(again.stdout, 'bridge_ip'), bridgeIp);

  // host-tune.sh through fleet.sh in each namespace: aliases and per-namespace sysctls; host-wide
  // ones are reported and left alone; a second run changes nothing.
  const inv = `/tmp/hongbao-netns/${run}/inventory`;
  const tune = await fleet(run, inv, 'tune');
  t.is(tune.code, 0, tune.stdout + tune.stderr);
  t.regex(tune.stdout, /\nvm2 +hb-\S+-vm2 +ok +host-tune\.sh: \d+ changed, 0 unchanged, 3 skipped\n/);
  const tune2 = await fleet(run, inv, 'tune', '--verbose');
  t.is(tune2.code, 0);
  t.is(tune2.stdout.match(/^vm\d +\S+ +ok +host-tune\.sh: 0 changed, \d+ unchanged, 3 skipped$/gm)?.length, 3, tune2.stdout);
  t.true(tune2.stdout.includes('skipped sysctl fs.file-max (host-wide, not changed in netns mode)'));
  t.true(tune2.stdout.includes('skipped sysctl fs.nr_open (host-wide, not changed in netns mode)'));
  t.true(tune2.stdout.includes('unchanged sysctl net.ipv4.tcp_tw_reuse = 1'));
  t.is(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'), hostRange, 'the host keeps its port range');
  t.is(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'), hostSomaxconn, 'the host keeps its somaxconn');
  for (let n = 1; n <= 3; n++) {
    const ns = `hb-${run}-vm${n}`;
    t.is(inNs(ns, 'sysctl', '-n', 'net.ipv4.ip_local_port_range').stdout.trim().replace(/\s+/g, ' '), '1024 65535');
    t.is(inNs(ns, 'sysctl', '-n', 'net.core.somaxconn').stdout.trim(), '65535');
    const addrs = inNs(ns, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0').stdout;
    for (const host of [1, 10, 11]) t.true(addrs.includes(` inet ${base}${third + n}.${host}/20 `), `${ns}: ${addrs}`);
    t.true(inNs(ns, 'ip', '-o', 'link', 'show', 'lo').stdout.includes('UP'));
    t.is(inNs(ns, 'ip', 'route', 'show', 'default').stdout.trim(), '', 'no default route: nothing leaves 198.18.0.0/15');
  }
  t.true(layout.includes(`ns=vm1 hb-${run}-vm1 ${base}${third + 1}.1 ${base}${third + 1}.10-${base}${third + 1}.11\n`), layout);

  // A real stub on the bridge; a tiny ws client in each namespace logs a user in from each source IP.
  const stub = await startCli<{ port: number; httpPort: number }>(t, ['stub', '--host', bridgeIp, '--port', '0', '--http-port', '0', '--iface', `hb${run}br`, '--token', 'netns-test']);
  const client = `
    import WebSocket from 'ws';
    const [url, local, user] = process.argv.slice(1);
    const ws = new WebSocket(url, { localAddress: local, perMessageDeflate: false });
    ws.on('open', () => { const b = Buffer.alloc(16); b.writeUInt16BE(16, 0); b.writeUInt16BE(0, 2);
      b.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 1000)), 4); b.writeUInt32BE(Number(user), 12); ws.send(b); });
    ws.on('message', (d) => { console.log(JSON.stringify({ cmd: d.readUInt16BE(2), user: d.readUInt32BE(12), result: d.readUInt32BE(16) })); setTimeout(() => process.exit(0), 1500); });
    ws.on('error', (e) => { console.error(e.message); process.exit(1); });`;
  const clients = [];
  for (let n = 1; n <= 3; n++) {
    for (const host of [10, 11]) {
      const user = n * 100 + host;
      clients.push(
        new Promise<Ran>((resolve) => {
          const c = spawn('ip', ['netns', 'exec', `hb-${run}-vm${n}`, process.execPath, '--input-type=module', '-e', client, `ws://${bridgeIp}:${stub.ready.port}`, `${base}${third + n}.${host}`, String(user)], { cwd: ROOT });
          let stdout = '';
          let stderr = '';
          c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
          c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
          c.once('close', (code) => resolve({ code, stdout, stderr }));
        }),
      );
    }
  }
  const seen = await waitFor('6 connections from the namespaces', () => {
    const p = peers(bridgeIp, stub.ready.port);
    return Object.values(p).reduce((a, b) => a + b, 0) === 6 && p;
  });
  const want: Record<string, number> = {};
  for (let n = 1; n <= 3; n++) for (const host of [10, 11]) want[`${base}${third + n}.${host}`] = 1;
  t.deepEqual(seen, want);
  for (const r of await Promise.all(clients)) {
    t.is(r.code, 0, r.stderr);
    t.is(JSON.parse(r.stdout).result, 0);
    t.is(JSON.parse(r.stdout).cmd, 1);
  }

  // Teardown: no namespace, link, state or process of the run is left.
  const nsPids = namespacesOf(run).flatMap((ns) => spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean));
  t.deepEqual(nsPids, [], 'the clients are gone');
  const down = await netns('down', '--run-id', run);
  t.is(down.code, 0, down.stderr);
  t.is(down.stdout.trim(), `run ${run} is down`);
  t.deepEqual(namespacesOf(run), []);
  t.deepEqual(linksOf(run), []);
  t.false(existsSync(`/tmp/hongbao-netns/${run}`));
  const downAgain = await netns('down', '--run-id', run);
  t.is(downAgain.code, 0, 'down is idempotent');
});

netnsTest('provisioning netns: fleet of 3 namespaces x 2 source IPs: agents log every user in from their addresses, QPS changes in one second, teardown leaves nothing', async (t) => {
  const run = runId('ne');
  const { bridgeIp } = await bringUp(t, run, 3, 2);
  const base = bridgeIp.split('.').slice(0, 2).join('.') + '.';
  const third = Number(bridgeIp.split('.')[2]);
  const stub = await startCli<{ port: number; httpPort: number }>(t, ['stub', '--host', bridgeIp, '--port', '0', '--http-port', '0', '--iface', `hb${run}br`, '--token', 'netns-test']);
  const stats = async (since = 0) => (await (await fetch(`http://${bridgeIp}:${stub.ready.httpPort}/stats${since ? `?since=${since}` : ''}`)).json()) as { connections: number; seconds: Array<{ second: number; shakes: number }> };
  const inv = `/tmp/hongbao-netns/${run}/inventory`;
  const users = 100;
  const q1 = 60;
  const q2 = 240;
  // A snapshot of the bundle: dist/ may be rebuilt by another test meanwhile.
  bundlePath = snapshotBundle(t);
  const upInv = await netns('up', '--run-id', run, '--count', '3', '--ips', '2', '--inventory', inv, '--server-port', String(stub.ready.port), '--users-per-vm', String(users), '--qps', String(q1));
  t.is(upInv.code, 0, upInv.stderr);

  let pids: number[] = [];
  t.teardown(async () => {
    await fleet(run, inv, 'stop');
  });
  for (const step of ['tune', 'deploy', 'start']) {
    const r = await fleet(run, inv, step);
    t.is(r.code, 0, `${step}: ${r.stdout}${r.stderr}`);
    t.regex(r.stdout, new RegExp(`fleet\\.sh ${step}: 3 ok, 0 failed \\(netns\\)\\n$`));
    if (step === 'start') pids = [...r.stdout.matchAll(/started: pid (\d+)/g)].map((m) => Number(m[1]));
  }
  t.is(pids.length, 3);
  // Idempotent: deploy and start again change nothing.
  const deploy2 = await fleet(run, inv, 'deploy', '--verbose');
  t.is(deploy2.code, 0, deploy2.stdout + deploy2.stderr);
  t.is(deploy2.stdout.match(/^unchanged \/tmp\/hongbao-netns\/\S+\/(hongbao\.cjs|agentctl\.sh|agent\.env|hongbao-agent\.service)$/gm)?.length, 12, deploy2.stdout);
  t.is(deploy2.stdout.match(/^copied /gm), null);
  const start2 = await fleet(run, inv, 'start');
  t.is(start2.code, 0, start2.stdout + start2.stderr);
  t.deepEqual([...start2.stdout.matchAll(/already running: pid (\d+)/g)].map((m) => Number(m[1])).sort(), [...pids].sort());
  // The agent runs the unit's ExecStart line.
  const unit = readFileSync(`/tmp/hongbao-netns/${run}/vm2/etc/systemd/system/hongbao-agent.service`, 'utf8');
  const execStart = unit.match(/^ExecStart=(.*)$/m)![1];
  t.true(execStart.includes(`hongbao.cjs agent --id vm2 --server ws://${bridgeIp}:${stub.ready.port} --users 100:100 --total-users 300 --source-ip ${base}${third + 2}.10-${base}${third + 2}.11`), execStart);

  await waitFor('300 connections at the stub', async () => (await stats()).connections === 300, 30000, 200);
  const seen = peers(bridgeIp, stub.ready.port);
  const want: Record<string, number> = {};
  for (let n = 1; n <= 3; n++) for (const host of [10, 11]) want[`${base}${third + n}.${host}`] = users / 2;
  t.deepEqual(seen, want, 'every agent\'s users come from its namespace\'s two source addresses, round-robin');

  // The agents' own counts (their /stats, through fleet.sh status) follow within a second or two.
  const status = await waitFor('fleet.sh status with every agent at 100 connections', async () => {
    const r = await fleet(run, inv, 'status');
    t.is(r.code, 0, r.stdout + r.stderr);
    return r.stdout.match(new RegExp(`^vm\\d +hb-${run}-vm\\d +ok +running pid \\d+, "connections":${users} "qps":${q1} `, 'gm'))?.length === 3 && r;
  }, 10000, 500);
  t.regex(status.stdout, /fleet\.sh status: 3 ok, 0 failed \(netns\)\n$/);

  // Retarget: every agent gets {qps, at} for the same second (4 s ahead: a busy CI box took more than 2 s
  // to reach the three namespaces, and the agents rightly refused a second already begun).
  const qps = await fleet(run, inv, 'qps', String(q2), '--at', '+4');
  t.is(qps.code, 0, qps.stdout + qps.stderr);
  const at = Number(qps.stdout.match(/^qps \d+ at (\d+) /)![1]);
  t.is(qps.stdout.match(new RegExp(`\\{"qps":${q2},"at":${at},"previous":${q1}\\}`, 'g'))?.length, 3, qps.stdout);
  const shakes = await shakesAround(`http://${bridgeIp}:${stub.ready.httpPort}/stats`, at);
  t.log(`shakes per second around the change at ${at}:`, [at - 2, at - 1, at, at + 1].map((s) => `${s}:${shakes(s)}`).join(' '));
  t.true(near(shakes(at - 1), q1), `second before the change: ${shakes(at - 1)}, want ${q1}`);
  t.true(near(shakes(at), q2), `second of the change: ${shakes(at)}, want ${q2}`);
  // (the second after: switched for good; on a busy CI box a few shakes of it may reach the stub late)
  t.true(shakes(at + 1) > (q1 + q2) / 2, `second after the change: ${shakes(at + 1)}, want about ${q2}`);

  const logs = await fleet(run, inv, 'logs', '-n', '3');
  t.is(logs.code, 0);
  t.is(logs.stdout.match(/^== vm\d \(hb-\S+\)\n(hongbao agent|\{)/gm)?.length, 3, logs.stdout);
  t.regex(logs.stdout, /fleet\.sh logs: 3 ok, 0 failed \(netns\)\n$/);

  const stop = await fleet(run, inv, 'stop');
  t.is(stop.code, 0, stop.stdout + stop.stderr);
  for (const pid of pids) t.false(existsSync(`/proc/${pid}`), `agent ${pid} is gone`);
  t.deepEqual(processesOf(run), [], 'no agent or worker process of the run is left');
  const stopped = await fleet(run, inv, 'status');
  t.is(stopped.code, 1, 'status fails when the agents are stopped');
  t.regex(stopped.stdout, /\nvm1 +\S+ +FAILED +stopped\n/);

  const down = await netns('down', '--run-id', run);
  t.is(down.code, 0, down.stderr);
  t.deepEqual(namespacesOf(run), []);
  t.deepEqual(linksOf(run), []);
  t.false(existsSync(`/tmp/hongbao-netns/${run}`));
  await waitFor('the stub to see no connection from the run', () => Object.keys(peers(bridgeIp, stub.ready.port)).length === 0, 5000);
  t.deepEqual(peers(bridgeIp, stub.ready.port), {});
});

netnsTest('provisioning netns: npm run fleet:local (fleet-local.sh) brings a fleet up, changes its QPS and tears it all down', async (t) => {
  const run = runId('nl');
  t.teardown(async () => {
    await netns('down', '--run-id', run);
  });
  const r = await sh([join(P, 'fleet-local.sh'), '--dist', (bundlePath = snapshotBundle(t)), '--run-id', run, '--count', '2', '--ips', '2', '--users-per-vm', '50', '--qps', '20', '--qps-to', '80', '--hold', '1'], 55000);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /== waiting for 100 connections\nstub: 100 connections; per source address:\n +25 198\.1[89]\.\d+\.10\n +25 198\.1[89]\.\d+\.11\n +25 198\.1[89]\.\d+\.10\n +25 198\.1[89]\.\d+\.11\n/);
  // Through the controller (it also serves the agents' SNTP).
  t.regex(r.stdout, /controller: 2 agents registered\n[^]*fleet\.sh qps: 2 ok, 0 failed \(controller\)\n/);
  const atChange = Number(r.stdout.match(/^ +\d+ +(\d+)  <- qps 80 from here$/m)?.[1] ?? -1);
  t.true(Math.abs(atChange - 80) <= 8, `shakes in the second of the change: ${atChange}, want 80`);
  t.true(r.stdout.trim().endsWith(`run ${run} is down`), r.stdout);
  t.deepEqual(namespacesOf(run), []);
  t.deepEqual(linksOf(run), []);
  t.deepEqual(processesOf(run), []);
  t.false(existsSync(`/tmp/hongbao-netns/${run}`));
});

