// provisioning over ssh: the path users take to real VMs, against an sshd (Debian's openssh-server)
// in each of 3 network namespaces of this machine (netns.sh up --sshd): fleet.sh with its default
// ssh transport, and the Ansible playbook (Debian's ansible-core). systemd is not PID 1 here, so
// agentctl.sh runs each unit's ExecStart itself (as its User=, with its LimitNOFILE), after
// deploy has checked the unit with systemd-analyze verify. Each test has its own run and stub
// (with a token), and t.teardown tears everything down. Skipped, saying what to install, where
// namespaces, sshd, systemd-analyze or ansible-playbook are missing.
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runProcess, startCli, waitFor, type Ran } from './helpers/process.ts';
import { needing } from './helpers/tools.ts';
import { P, inNs, kv, linksOf, namespacesOf, near, netnsPermitted, netnsWhy, peers, processesOf, runId, shakesAround, snapshotBundle } from './helpers/netns.ts';

const base = [['ip', 'iproute2'], ['curl', 'curl'], ['sshd', 'openssh-server'], ['ssh', 'openssh-client'], ['systemd-analyze', 'systemd']] as const;
const sshTool = needing(base, true);
const ansibleTool = needing([...base, ['ansible-playbook', 'ansible-core']], true);
// Skipped (title says why) where namespaces are not permitted or a tool is missing; a broken build fails.
const sshTest = (title: string, tool: ReturnType<typeof needing>, fn: (t: ExecutionContext) => Promise<void>) => (netnsPermitted ? tool.test : test.skip)(title + (tool.why || netnsWhy), fn);

const USERS = 100;
const Q1 = 60;
const Q2 = 240;

function sh(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60000): Promise<Ran> {
  return runProcess('bash', args, { cwd: P, env, timeoutMs });
}

/** A run of 3 namespaces x 2 source IPs with sshd, a stub on its bridge (with a token), an inventory. */
async function testBed(t: ExecutionContext, tag: string) {
  const run = runId(tag);
  const state = `/tmp/hongbao-netns/${run}`;
  const netns = (...a: string[]) => sh([join(P, 'netns.sh'), ...a]);
  t.teardown(async () => {
    const down = await netns('down', '--run-id', run);
    if (down.code !== 0) console.error(`netns.sh down --run-id ${run}: ${down.stderr}`);
  });
  const up = await netns('up', '--run-id', run, '--count', '3', '--ips', '2', '--sshd');
  t.is(up.code, 0, up.stderr);
  t.is(kv(up.stdout, 'ssh_config'), `${state}/ssh/config`);
  const bridgeIp = kv(up.stdout, 'bridge_ip');
  const [a, b, c] = bridgeIp.split('.');
  const vmIp = (n: number, host: number) => `${a}.${b}.${Number(c) + n}.${host}`;
  const token = randomBytes(16).toString('hex');
  const stub = await startCli<{ port: number; httpPort: number }>(t, ['stub', '--host', bridgeIp, '--port', '0', '--http-port', '0', '--iface', `hb${run}br`], { env: { HONGBAO_TOKEN: token } });
  const statsUrl = `http://${bridgeIp}:${stub.ready.httpPort}/stats`;
  const inv = `${state}/inventory`;
  const withInv = await netns('up', '--run-id', run, '--count', '3', '--ips', '2', '--sshd', '--inventory', inv, '--server-port', String(stub.ready.port), '--users-per-vm', String(USERS), '--qps', String(Q1));
  t.is(withInv.code, 0, withInv.stderr);
  t.regex(readFileSync(inv, 'utf8'), new RegExp(`\\nvm2 root@${vmIp(2, 1).replaceAll('.', '\\.')} \\S+ 100:100 fsroot=${state}/vm2\\n`));
  const connections = async () => ((await (await fetch(statsUrl)).json()) as { connections: number }).connections;
  /** Every agent's users come from its namespace's two source addresses, round-robin. */
  const wantPeers: Record<string, number> = {};
  for (let n = 1; n <= 3; n++) for (const host of [10, 11]) wantPeers[vmIp(n, host)] = USERS / 2;
  return { run, state, bridgeIp, vmIp, token, stub, statsUrl, inv, connections, wantPeers, bundle: snapshotBundle(t) };
}

sshTest('provisioning ssh: fleet.sh over ssh to an sshd in each of 3 namespaces x 2 source IPs: tune, deploy, start as the unit says, status, a QPS change in one second, logs, stop; teardown leaves nothing', sshTool, async (t) => {
  t.timeout(150000);
  const bed = await testBed(t, 's');
  const { run, state, inv, token } = bed;
  const fleet = (...a: string[]) => sh([join(P, 'fleet.sh'), '-i', inv, '--dist', bed.bundle, ...a], { HONGBAO_TOKEN: token });
  t.teardown(async () => {
    await fleet('stop');
  });
  const table = (r: Ran, cmd: string) => t.regex(r.stdout, new RegExp(`fleet\\.sh ${cmd}: 3 ok, 0 failed \\(ssh\\)\\n$`), r.stdout + r.stderr);
  // vm1 has Debian's chrony.conf: tune comments out its makestep (which would override ours).
  mkdirSync(`${state}/vm1/etc/chrony`, { recursive: true });
  writeFileSync(`${state}/vm1/etc/chrony/chrony.conf`, 'confdir /etc/chrony/conf.d\npool 2.debian.pool.ntp.org iburst\nmakestep 1 3\n');

  // tune: host-tune.sh over ssh in each namespace: per-namespace sysctls and aliases live, the
  // files under the VM's fsroot, host-wide settings left alone; again: nothing to change.
  const hostRange = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
  const tune = await fleet('tune');
  t.is(tune.code, 0, tune.stdout + tune.stderr);
  table(tune, 'tune');
  t.is(tune.stdout.match(new RegExp(`^vm\\d +root@\\S+ +ok +host-tune\\.sh: \\d+ changed, 0 unchanged, 3 skipped$`, 'gm'))?.length, 3, tune.stdout);
  const tune2 = await fleet('tune');
  t.is(tune2.stdout.match(/^vm\d +root@\S+ +ok +host-tune\.sh: 0 changed, \d+ unchanged, 3 skipped$/gm)?.length, 3, tune2.stdout);
  t.is(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'), hostRange, 'the host keeps its port range');
  for (let n = 1; n <= 3; n++) {
    const ns = `hb-${run}-vm${n}`;
    t.is(inNs(ns, 'sysctl', '-n', 'net.ipv4.ip_local_port_range').stdout.trim().replace(/\s+/g, ' '), '1024 65535');
    const addrs = inNs(ns, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0').stdout;
    for (const host of [10, 11]) t.true(addrs.includes(` inet ${bed.vmIp(n, host)}/20 `), addrs);
    t.true(readFileSync(`${state}/vm${n}/etc/sysctl.d/90-hongbao.conf`, 'utf8').includes('\nnet.ipv4.tcp_tw_reuse = 1\n'));
    t.true(readFileSync(`${state}/vm${n}/etc/security/limits.d/90-hongbao.conf`, 'utf8').includes('\ndaemon hard nofile 20000\n'));
    t.true(readFileSync(`${state}/vm${n}/etc/chrony/conf.d/hongbao-client.conf`, 'utf8').includes(`\nserver ${bed.bridgeIp} iburst prefer minpoll 4 maxpoll 6\nmakestep 0.1 3\n`));
  }
  t.true(readFileSync(`${state}/vm1/etc/chrony/chrony.conf`, 'utf8').includes('\n# makestep 1 3   # hongbao: conf.d/hongbao-client.conf sets makestep\n'));

  // deploy: bundle, agentctl.sh, agent.env (the token, 0600), the unit; systemd-analyze verify.
  const deploy = await fleet('deploy', '--verbose');
  t.is(deploy.code, 0, deploy.stdout + deploy.stderr);
  table(deploy, 'deploy');
  for (let n = 1; n <= 3; n++) {
    const unitPath = `${state}/vm${n}/etc/systemd/system/hongbao-agent.service`;
    t.true(deploy.stdout.includes(`\nunit verified: systemd-analyze verify ${unitPath}: no warnings\n`), deploy.stdout);
    t.is(readFileSync(`${state}/vm${n}/etc/hongbao/agent.env`, 'utf8'), `HONGBAO_TOKEN=${token}\n`);
    t.is(spawnSync('stat', ['-c', '%a', `${state}/vm${n}/etc/hongbao/agent.env`], { encoding: 'utf8' }).stdout.trim(), '600');
  }
  const deploy2 = await fleet('deploy', '--verbose');
  t.is(deploy2.stdout.match(/^unchanged \/tmp\/hongbao-netns\/\S+\/(hongbao\.cjs|agentctl\.sh|agent\.env|hongbao-agent\.service)$/gm)?.length, 12, deploy2.stdout);
  t.is(deploy2.stdout.match(/^copied /gm), null);

  // start: no systemd here, so the unit's ExecStart as its User= (daemon) with its LimitNOFILE.
  const start = await fleet('start');
  t.is(start.code, 0, start.stdout + start.stderr);
  table(start, 'start');
  const pids = [...start.stdout.matchAll(/^vm(\d) +\S+ +ok +started: pid (\d+) \(user daemon, nofile 20000, no systemd: the unit's ExecStart\)$/gm)].map((m) => ({ n: Number(m[1]), pid: Number(m[2]) }));
  t.is(pids.length, 3, start.stdout);
  for (const { n, pid } of pids) {
    const unit = readFileSync(`${state}/vm${n}/etc/systemd/system/hongbao-agent.service`, 'utf8');
    const execStart = unit.match(/^ExecStart=(.*)$/m)![1];
    t.is(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim(), execStart, 'the agent runs the unit\'s ExecStart');
    t.true(execStart.includes(`${state}/vm${n}/opt/hongbao/hongbao.cjs agent --id vm${n} --server ws://${bed.bridgeIp}:${bed.stub.ready.port} --users ${(n - 1) * USERS}:${USERS} `), execStart);
    t.regex(readFileSync(`/proc/${pid}/status`, 'utf8'), /\nUid:\t1\t1\t1\t1\n/, 'as User=daemon');
    t.regex(readFileSync(`/proc/${pid}/limits`, 'utf8'), /\nMax open files +20000 +20000 /, 'with LimitNOFILE=20000');
    t.true(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`HONGBAO_TOKEN=${token}`), 'with its EnvironmentFile');
    t.true(spawnSync('ip', ['netns', 'pids', `hb-${run}-vm${n}`], { encoding: 'utf8' }).stdout.split('\n').includes(String(pid)), `agent ${pid} lives in namespace vm${n}`);
  }
  const start2 = await fleet('start');
  t.deepEqual([...start2.stdout.matchAll(/already running: pid (\d+)/g)].map((m) => Number(m[1])).sort(), pids.map((p) => p.pid).sort());

  await waitFor('300 connections at the stub', async () => (await bed.connections()) === 300, 30000, 200);
  t.deepEqual(peers(bed.bridgeIp, bed.stub.ready.port), bed.wantPeers);
  const status = await waitFor('fleet.sh status with every agent at 100 connections', async () => {
    const r = await fleet('status');
    return r.stdout.match(new RegExp(`^vm\\d +root@\\S+ +ok +running pid \\d+, "connections":${USERS} "qps":${Q1} `, 'gm'))?.length === 3 && r;
  }, 15000, 500);
  table(status, 'status');

  // qps: each VM POSTs {qps, at} to its agent (curl there, its token from agent.env), same at.
  const qps = await fleet('qps', String(Q2), '--at', '+3');
  t.is(qps.code, 0, qps.stdout + qps.stderr);
  const at = Number(qps.stdout.match(/^qps \d+ at (\d+) /)![1]);
  t.is(qps.stdout.match(new RegExp(`\\{"qps":${Q2},"at":${at},"previous":${Q1}\\}`, 'g'))?.length, 3, qps.stdout);
  const shakes = await shakesAround(bed.statsUrl, at);
  t.log(`shakes per second around the change at ${at}:`, [at - 2, at - 1, at, at + 1].map((s) => `${s}:${shakes(s)}`).join(' '));
  t.true(near(shakes(at - 1), Q1), `second before the change: ${shakes(at - 1)}, want ${Q1}`);
  t.true(near(shakes(at), Q2), `second of the change: ${shakes(at)}, want ${Q2}`);
  t.true(near(shakes(at + 1), Q2), `second after the change: ${shakes(at + 1)}, want ${Q2}`);

  const logs = await fleet('logs', '-n', '5');
  t.is(logs.code, 0, logs.stdout + logs.stderr);
  t.is(logs.stdout.match(new RegExp(`^hongbao agent: fleet qps -> ${Q2} from second ${at}$`, 'gm'))?.length, 3, logs.stdout);
  table(logs, 'logs');

  const stop = await fleet('stop');
  t.is(stop.code, 0, stop.stdout + stop.stderr);
  t.is(stop.stdout.match(/^vm\d +\S+ +ok +stopped pid \d+$/gm)?.length, 3, stop.stdout);
  for (const { pid } of pids) t.false(existsSync(`/proc/${pid}`), `agent ${pid} is gone`);
  t.deepEqual(agentsOf(run), [], 'no agent or worker is left');
  const stopped = await fleet('status');
  t.is(stopped.code, 1, 'status fails when the agents are stopped');
  t.is(stopped.stdout.match(/^vm\d +\S+ +FAILED +stopped$/gm)?.length, 3, stopped.stdout);

  // Teardown: no namespace, link, sshd, ssh connection, agent or file of the run is left.
  t.true(processesOf(run).length >= 3, 'the sshds run from the run\'s directory');
  const down = await sh([join(P, 'netns.sh'), 'down', '--run-id', run]);
  t.is(down.code, 0, down.stderr);
  t.deepEqual(namespacesOf(run), []);
  t.deepEqual(linksOf(run), []);
  t.deepEqual(processesOf(run), [], 'no sshd, ssh master or agent of the run is left');
  t.false(existsSync(state));
  await waitFor('the stub to see no connection from the run', () => Object.keys(peers(bed.bridgeIp, bed.stub.ready.port)).length === 0, 5000);
});

/** PIDs of the run's agents (and their workers). */
function agentsOf(run: string): number[] {
  return processesOf(run).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('hongbao.cjs\0agent');
    } catch {
      return false;
    }
  });
}

/** Per-host counts of an ansible-playbook PLAY RECAP. */
function recap(out: string): Record<string, { ok: number; changed: number; unreachable: number; failed: number }> {
  const hosts: Record<string, { ok: number; changed: number; unreachable: number; failed: number }> = {};
  for (const m of out.matchAll(/^(\S+) +: ok=(\d+) +changed=(\d+) +unreachable=(\d+) +failed=(\d+)/gm)) {
    hosts[m[1]] = { ok: Number(m[2]), changed: Number(m[3]), unreachable: Number(m[4]), failed: Number(m[5]) };
  }
  return hosts;
}

sshTest('provisioning ansible: the playbook over ssh to 3 namespaces: --check changes nothing, a run brings the fleet up, a second run reports changed=0, fleet.sh finds its files unchanged, qps.yml lands in one second, stop.yml stops', ansibleTool, async (t) => {
  t.timeout(240000);
  const bed = await testBed(t, 'a');
  const { run, state, inv, token } = bed;
  const env = { HONGBAO_INVENTORY: inv, HONGBAO_DIST: bed.bundle, HONGBAO_TOKEN: token, ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0', ANSIBLE_LOCAL_TEMP: `${state}/ansible-local` };
  const play = (...a: string[]) => runProcess('ansible-playbook', a, { cwd: join(P, 'ansible'), env, timeoutMs: 150000 });
  const fleet = (...a: string[]) => sh([join(P, 'fleet.sh'), '-i', inv, '--dist', bed.bundle, ...a], { HONGBAO_TOKEN: token });
  t.teardown(async () => {
    await fleet('stop');
  });
  const hosts = ['vm1', 'vm2', 'vm3'];
  const everyHost = (r: Ran, what: string, ok: (h: { changed: number; failed: number; unreachable: number }) => boolean) => {
    const counts = recap(r.stdout);
    t.deepEqual(Object.keys(counts).sort(), hosts, r.stdout + r.stderr);
    for (const h of hosts) t.true(counts[h] && counts[h].failed === 0 && counts[h].unreachable === 0 && ok(counts[h]), `${what}: ${h}: ${JSON.stringify(counts[h])}\n${r.stdout.slice(-3000)}${r.stderr}`);
  };

  // --check: every host has changes to make, and nothing is made.
  const rangeOf = (n: number) => inNs(`hb-${run}-vm${n}`, 'sysctl', '-n', 'net.ipv4.ip_local_port_range').stdout.trim().replace(/\s+/g, ' ');
  const freshRange = rangeOf(1);
  const check = await play('site.yml', '--check');
  t.is(check.code, 0, check.stdout + check.stderr);
  everyHost(check, '--check', (h) => h.changed > 0);
  t.regex(check.stdout, /would set sysctl net\.ipv4\.ip_local_port_range: /);
  for (let n = 1; n <= 3; n++) {
    t.false(existsSync(`${state}/vm${n}/opt/hongbao/hongbao.cjs`), '--check copies nothing');
    t.false(existsSync(`${state}/vm${n}/etc/sysctl.d/90-hongbao.conf`), '--check writes nothing');
    t.is(rangeOf(n), freshRange, '--check sets no sysctl');
    t.false(inNs(`hb-${run}-vm${n}`, 'ip', '-4', '-o', 'addr').stdout.includes(`${bed.vmIp(n, 10)}/`), '--check adds no address');
  }
  t.is(await bed.connections(), 0);

  // A run: tuned, deployed, started; the stub sees every user from its addresses.
  const first = await play('site.yml');
  t.is(first.code, 0, first.stdout + first.stderr);
  everyHost(first, 'first run', (h) => h.changed > 0);
  await waitFor('300 connections at the stub', async () => (await bed.connections()) === 300, 30000, 200);
  t.deepEqual(peers(bed.bridgeIp, bed.stub.ready.port), bed.wantPeers);
  for (let n = 1; n <= 3; n++) t.is(rangeOf(n), '1024 65535');

  // Idempotent: a second run changes nothing.
  const second = await play('site.yml');
  t.is(second.code, 0, second.stdout + second.stderr);
  everyHost(second, 'second run', (h) => h.changed === 0);

  // One source: fleet.sh finds what the playbook wrote unchanged, and drives the agents it started.
  const unit = await fleet('unit', 'vm2');
  t.is(readFileSync(`${state}/vm2/etc/systemd/system/hongbao-agent.service`, 'utf8'), unit.stdout, 'the playbook renders the unit fleet.sh renders');
  const deploy = await fleet('deploy', '--verbose');
  t.is(deploy.stdout.match(/^unchanged \/tmp\/hongbao-netns\/\S+\/(hongbao\.cjs|agentctl\.sh|agent\.env|hongbao-agent\.service)$/gm)?.length, 12, deploy.stdout);
  const tune = await fleet('tune');
  t.is(tune.stdout.match(/^vm\d +\S+ +ok +host-tune\.sh: 0 changed, \d+ unchanged, 3 skipped$/gm)?.length, 3, tune.stdout);
  await waitFor('fleet.sh status with every agent at 100 connections', async () => {
    const r = await fleet('status');
    return r.stdout.match(new RegExp(`^vm\\d +root@\\S+ +ok +running pid \\d+, "connections":${USERS} "qps":${Q1} `, 'gm'))?.length === 3 && r;
  }, 15000, 500);

  // qps.yml: one second for every agent, picked here, sent from each VM.
  const qps = await play('qps.yml', '-e', `qps=${Q2}`, '-e', 'lead=8');
  t.is(qps.code, 0, qps.stdout + qps.stderr);
  everyHost(qps, 'qps.yml', (h) => h.changed === 1);
  const at = Number(qps.stdout.match(new RegExp(`TASK \\[POST /qps \\{qps: ${Q2}, at: (\\d+)\\} to each agent`))?.[1]);
  t.true(at > 0, qps.stdout);
  const shakes = await shakesAround(bed.statsUrl, at);
  t.log(`shakes per second around the change at ${at}:`, [at - 2, at - 1, at, at + 1].map((s) => `${s}:${shakes(s)}`).join(' '));
  t.true(near(shakes(at - 1), Q1), `second before the change: ${shakes(at - 1)}, want ${Q1}`);
  t.true(near(shakes(at), Q2), `second of the change: ${shakes(at)}, want ${Q2}`);
  t.true(near(shakes(at + 1), Q2), `second after the change: ${shakes(at + 1)}, want ${Q2}`);

  // stop.yml stops each agent once.
  const stop = await play('stop.yml');
  t.is(stop.code, 0, stop.stdout + stop.stderr);
  everyHost(stop, 'stop.yml', (h) => h.changed === 1);
  t.deepEqual(agentsOf(run), [], 'no agent is left');
  const stopped = await fleet('status');
  t.is(stopped.stdout.match(/^vm\d +\S+ +FAILED +stopped$/gm)?.length, 3, stopped.stdout);

  const down = await sh([join(P, 'netns.sh'), 'down', '--run-id', run]);
  t.is(down.code, 0, down.stderr);
  t.deepEqual(namespacesOf(run), []);
  t.deepEqual(processesOf(run), [], 'no sshd or ssh connection of the run is left');
  t.false(existsSync(state));
});
