// provisioning: the bash scripts as real processes: shellcheck, --help, inventory validation,
// --dry-run output of every fleet.sh command over ssh, the per-VM result table with a failing VM (a
// fake ssh on PATH), host-tune.sh idempotence (--root), esxi-clone.sh's govc commands.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runProcess, type Ran } from './helpers/process.ts';
import { needing } from './helpers/tools.ts';

const P = fileURLToPath(new URL('../provisioning/', import.meta.url));
const SCRIPTS = ['fleet.sh', 'host-tune.sh', 'agentctl.sh', 'netns.sh', 'fleet-local.sh', 'esxi-clone.sh'];
const EXAMPLE = join(P, 'inventory.example');

function sh(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Ran> {
  return runProcess('bash', args, { cwd: opts.cwd ?? P, env: opts.env, timeoutMs: opts.timeoutMs ?? 30000 });
}

const tmp = () => mkdtempSync(join(tmpdir(), 'hb-prov-'));

/** A directory with fake ssh/scp/curl/govc that record their argv into calls.log (and fail for hosts in FAIL_HOSTS). */
function fakeBin(t: { teardown: (fn: () => void) => void }): { dir: string; calls: () => string[] } {
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const name of ['ssh', 'scp', 'curl', 'govc']) {
    const f = join(dir, name);
    writeFileSync(
      f,
      `#!/usr/bin/env bash
printf '%s %s\\n' "${name}" "$*" >> "${dir}/calls.log"
for h in \${FAIL_HOSTS:-}; do
  case " $* " in *" $h "*|*" $h:"*) echo "ssh: connect to host \${h#*@} port 22: Connection refused" >&2; exit 255 ;; esac
done
case "$*" in *sha256sum*) exit 0 ;; esac
echo "fake ${name} ok"
`,
    );
    chmodSync(f, 0o755);
  }
  return { dir, calls: () => (existsSync(join(dir, 'calls.log')) ? readFileSync(join(dir, 'calls.log'), 'utf8').trim().split('\n') : []) };
}

const shellcheck = needing([['shellcheck', 'shellcheck']]);

shellcheck.test(`provisioning: every script is shellcheck-clean${shellcheck.why}`, async (t) => {
  const files = [...SCRIPTS, ...readdirSync(join(P, 'lib')).map((f) => `lib/${f}`), 'ansible/inventory.sh', 'ansible/pack-host-tune.sh'];
  t.true(files.length >= 10, files.join(' '));
  const r = spawnSync('shellcheck', ['--severity=style', ...files], { cwd: P, encoding: 'utf8' });
  t.is(r.status, 0, r.stdout + r.stderr);
});

test('provisioning: every script starts with set -euo pipefail and answers --help', async (t) => {
  for (const s of SCRIPTS) {
    const text = readFileSync(join(P, s), 'utf8');
    t.regex(text, /^#!\/usr\/bin\/env bash\n/, s);
    t.true(text.includes('\nset -euo pipefail\n'), `${s} lacks set -euo pipefail`);
    const r = await sh([join(P, s), '--help']);
    t.is(r.code, 0, `${s} --help: ${r.stderr}`);
    t.regex(r.stdout, /^usage: /, s);
    t.true(r.stdout.includes('--dry-run'), `${s} --help mentions --dry-run`);
  }
  const bad = await sh([join(P, 'fleet.sh'), '--bogus']);
  t.is(bad.code, 2);
  t.is(bad.stderr.trim(), "fleet.sh: unknown option '--bogus' (see fleet.sh --help)");
});

test('provisioning: the example inventory (the original 17 VMs) validates and renders each agent command line', async (t) => {
  const r = await sh([join(P, 'fleet.sh'), '-i', EXAMPLE, 'check']);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.is(lines[0], `inventory ${EXAMPLE}: 17 VMs, total-users 1020000, server ws://10.10.0.2:1025, qps 30000`);
  t.is(lines.length, 18);
  t.is(
    lines[17],
    'vm17 (line 36, root@10.10.0.27): /usr/bin/node /opt/hongbao/hongbao.cjs agent --id vm17 --server ws://10.10.0.2:1025 ' +
      '--users 960000:60000 --total-users 1020000 --source-ip 10.10.17.1-10.10.17.2 --workers 4 --controller http://10.10.0.1:8080 ' +
      '--control-host 10.10.0.27 --control-port 9090 --ntp off --qps 30000 --mode spread --rule modulo',
  );
  const unit = await sh([join(P, 'fleet.sh'), '-i', EXAMPLE, 'unit', 'vm03']);
  t.is(unit.code, 0, unit.stderr);
  t.true(unit.stdout.includes('\nExecStart=/usr/bin/node /opt/hongbao/hongbao.cjs agent --id vm03 --server ws://10.10.0.2:1025 --users 120000:60000 '));
  t.true(unit.stdout.includes('\nLimitNOFILE=1048576\n'));
  t.true(unit.stdout.includes('\nUser=hongbao\n'));
  t.true(unit.stdout.includes('\nEnvironmentFile=-/etc/hongbao/agent.env\n'));
  t.true(unit.stdout.includes('\nWantedBy=multi-user.target\n'));
  // After time sync (chrony-wait holds time-sync.target until chrony is synchronised), and no
  // restart loop on a configuration error (exit 2).
  t.true(unit.stdout.includes('\nWants=network-online.target time-sync.target chrony-wait.service\n'), unit.stdout);
  t.regex(unit.stdout, /\nAfter=.*\btime-sync\.target\b.*\bchrony-wait\.service\b/);
  t.true(unit.stdout.includes('\nRestartPreventExitStatus=2\n'));
  for (const args of [['unit', 'vm99'], ['--only', 'vm01,vm99', 'status']]) {
    const unknown = await sh([join(P, 'fleet.sh'), '-i', EXAMPLE, ...args]);
    t.is(unknown.code, 2, args.join(' '));
    t.is(unknown.stdout, '');
    t.is(unknown.stderr.trim(), `fleet.sh: no VM named 'vm99' in ${EXAMPLE} (see fleet.sh --help)`);
  }
});

test('provisioning: a tcp:// server (the original raw-TCP framing) is accepted and reaches the agent command line', async (t) => {
  const inv = join(tmp(), 'inventory');
  writeFileSync(inv, readFileSync(EXAMPLE, 'utf8').replace('server=ws://10.10.0.2:1025', 'server=tcp://10.10.0.2:1025'));
  const r = await sh([join(P, 'fleet.sh'), '-i', inv, 'check']);
  t.is(r.code, 0, r.stderr);
  t.true(r.stdout.includes('server tcp://10.10.0.2:1025'), r.stdout);
  t.true(r.stdout.includes('agent --id vm17 --server tcp://10.10.0.2:1025 '), r.stdout);
});

test('provisioning: inventory errors name the file, the line and the field, and exit 2', async (t) => {
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const inv = join(dir, 'bad');
  writeFileSync(
    inv,
    [
      'server=http://10.0.0.2:1025', // 1
      'colour=blue', // 2
      'vm1  root@10.0.1.1  10.0.1.10-10.0.1.11  0:100', // 3
      'vm1  root@10.0.1.2  10.0.1.11            50:100', // 4
      'vm3  root@10.0.1.3  10.0.1.300           x:1', // 5
      'vm4  root@10.0.1.4  10.0.1.40            1000:70000', // 6
      'vm5  root@10.0.1.5', // 7
      'vm6  root@10.0.1.6  10.0.1.60-10.0.1.50  90000:10 workers=0 colour=red', // 8
      'total-users=80000', // 9
    ].join('\n'),
  );
  const r = await sh([join(P, 'fleet.sh'), '-i', inv, 'check']);
  t.is(r.code, 2);
  const want = [
    `${inv}:1: field 'server': 'http://10.0.0.2:1025' is not ws://HOST:PORT or tcp://HOST:PORT`,
    `${inv}:2: unknown setting 'colour'`,
    `${inv}:4: field 'name': 'vm1' already used on line 3`,
    `${inv}:4: field 'source-ips' of vm1: 10.0.1.11 is already used on line 3`,
    `${inv}:5: field 'source-ips' of vm3: '10.0.1.300' is not an IPv4 address`,
    `${inv}:5: field 'users' of vm3: 'x:1' is not FIRST:COUNT (e.g. 0:60000)`,
    `${inv}:6: field 'users' of vm4: 70000 users over 1 source IPs need 70000 ports per IP, more than the 64512 of ip_local_port_range 1024-65535; add source IPs`,
    `${inv}:7: a VM line needs 4 fields 'name target source-ips users', got 2: 'vm5  root@10.0.1.5'`,
    `${inv}:8: field 'source-ips' of vm6: range '10.0.1.60-10.0.1.50' ends before it starts`,
    `${inv}:8: field 'workers': '0' is not an integer from 1 to 256`,
    `${inv}:8: field 5+ of vm6: 'colour=red' is not KEY=VALUE with KEY one of workers, control-port, control-host, iface, prefix`,
    `${inv}:4: field 'users' of vm1: 50:100 overlaps 0:100 of vm1 (line 3)`,
    `${inv}:8: field 'users' of vm6: 90000:10 ends at 90009, beyond total-users 80000 (ids 0..79999)`,
  ];
  for (const w of want) t.true(r.stderr.includes(`fleet.sh: ${w}`), `missing: ${w}\n--- got:\n${r.stderr}`);
  t.regex(r.stderr, /inventory .* has \d+ error\(s\)\n$/);
  const missing = await sh([join(P, 'fleet.sh'), '-i', join(dir, 'nope'), 'check']);
  t.is(missing.code, 2);
  t.is(missing.stderr.trim(), `fleet.sh: inventory ${join(dir, 'nope')}: not readable`);
});

test('provisioning: fleet.sh --dry-run over ssh prints the exact commands per VM and runs none', async (t) => {
  const fake = fakeBin(t);
  const env = { PATH: `${fake.dir}:${process.env.PATH}`, HONGBAO_TOKEN: 'sekret' };
  const dry = (...a: string[]) => sh([join(P, 'fleet.sh'), '-i', EXAMPLE, '--dry-run', ...a], { env });
  const ssh = 'ssh -o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=3';

  const tune = await dry('--only', 'vm02', 'tune');
  t.is(tune.code, 0, tune.stderr);
  t.true(tune.stdout.includes('== controller (root@10.10.0.1)\n'));
  t.true(tune.stdout.includes(`+ ${ssh} root@10.10.0.1 'bash /opt/hongbao/host-tune.sh --chrony-serve 10.10.0.0/16'\n`));
  t.true(tune.stdout.includes('== vm02 (root@10.10.0.12)\n'));
  // One checksum call, one scp and one move for all of host-tune.sh, its library and templates.
  t.regex(tune.stdout, new RegExp(`\\+ scp -q -o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=3 \\S+/0-host-tune\\.sh \\S+/1-common\\.sh .* root@10\\.10\\.0\\.12:/opt/hongbao/\\.incoming/   # links to: ${P}host-tune\\.sh ${P}lib/common\\.sh ${P}files/`));
  t.is(tune.stdout.match(/^\+ scp /gm)?.length, 2, 'one scp for the controller, one for vm02');
  t.true(tune.stdout.includes(`mv -f /opt/hongbao/.incoming/0-host-tune.sh /opt/hongbao/host-tune.sh && `));
  t.true(tune.stdout.includes(`mv -f /opt/hongbao/.incoming/2-90-hongbao-limits.conf.j2 /opt/hongbao/files/90-hongbao-limits.conf.j2 && `), tune.stdout);
  t.true(
    tune.stdout.includes(
      `+ ${ssh} root@10.10.0.12 'bash /opt/hongbao/host-tune.sh --source-ips 10.10.2.1-10.10.2.2 --iface auto --prefix 16 --user hongbao --nofile 1048576 --chrony-server 10.10.0.1'\n`,
    ),
    tune.stdout,
  );
  t.regex(tune.stdout, /\nvm02 +root@10\.10\.0\.12 +dry-run +\d+ commands\nfleet\.sh tune: 1 ok, 0 failed \(ssh\)\n$/);

  const deploy = await dry('--only', 'vm01', 'deploy');
  t.is(deploy.code, 0, deploy.stderr);
  t.true(deploy.stdout.includes('useradd --system --no-create-home --shell /usr/sbin/nologin hongbao'));
  t.regex(deploy.stdout, /\+ scp -q .* root@10\.10\.0\.11:\/opt\/hongbao\/\.incoming\/   # links to: \/\S+\/dist\/hongbao\.cjs \S+\/agentctl\.sh \S+\/agent\.env \S+\/hongbao-agent\.service\n/);
  t.true(deploy.stdout.includes(`chmod 0600 /opt/hongbao/.incoming/2-agent.env && mv -f /opt/hongbao/.incoming/2-agent.env /etc/hongbao/agent.env && `));
  t.true(deploy.stdout.includes(`+ ${ssh} root@10.10.0.11 'bash /opt/hongbao/agentctl.sh reload'\n`));
  t.true(deploy.stdout.includes(`+ ${ssh} root@10.10.0.11 'bash /opt/hongbao/agentctl.sh verify'\n`));
  t.false(deploy.stdout.includes('sekret'), 'the token never appears in the output');

  const start = await dry('start');
  t.is(start.code, 0);
  // agentctl.sh on the VM: systemctl there, or the unit's ExecStart where systemd is not PID 1.
  t.is((start.stdout.match(/'bash \/opt\/hongbao\/agentctl\.sh start'\n/g) ?? []).length, 17);
  const stop = await dry('--only', 'vm05', 'stop');
  t.true(stop.stdout.includes(`+ ${ssh} root@10.10.0.15 'bash /opt/hongbao/agentctl.sh stop'\n`));
  const status = await dry('--only', 'vm05', 'status');
  t.true(status.stdout.includes(`+ ${ssh} root@10.10.0.15 'bash /opt/hongbao/agentctl.sh status --control http://10.10.0.15:9090'\n`), 'the control endpoint listens on the VM\'s address (the controller calls it there)');
  const logs = await dry('--only', 'vm05', 'logs', '-n', '20');
  t.true(logs.stdout.includes(`+ ${ssh} root@10.10.0.15 'bash /opt/hongbao/agentctl.sh logs -n 20'\n`));

  const viaAgents = await dry('--only', 'vm01,vm17', 'qps', '60000', '--via', 'agents', '--at', '1800000000');
  t.is(viaAgents.code, 0, viaAgents.stderr);
  t.true(viaAgents.stdout.startsWith('qps 60000 at 1800000000 '));
  for (const host of ['10.10.0.11', '10.10.0.27']) {
    t.true(
      viaAgents.stdout.includes(
        `+ ${ssh} root@${host} 'set -a; if [ -f /etc/hongbao/agent.env ]; then . /etc/hongbao/agent.env; fi; set +a; curl -fsS -m 5 -X POST -H '\\''content-type: application/json'\\'' \${HONGBAO_TOKEN:+-H "authorization: Bearer $HONGBAO_TOKEN"} -d '\\''{"qps":60000,"at":1800000000}'\\'' http://${host}:9090/qps && echo'\n`,
      ),
      viaAgents.stdout,
    );
  }
  const viaController = await dry('qps', '60000');
  t.is(viaController.stdout, `+ curl -sS -m 15 -X POST -H 'authorization: Bearer $HONGBAO_TOKEN' -H 'content-type: application/json' -d '{"qps":60000}' -w '\\n%{http_code}' http://10.10.0.1:8080/qps\n`);
  const viaControllerAt = await dry('qps', '60000', '--at', '1800000000');
  t.true(viaControllerAt.stdout.includes(`-d '{"qps":60000,"at":1800000000}'`), viaControllerAt.stdout);
  const tooMuch = await dry('qps', '2000000');
  t.is(tooMuch.code, 2);
  t.is(tooMuch.stderr.trim(), "fleet.sh: qps must be an integer from 0 to 1020000 (total-users), got '2000000' (see fleet.sh --help)");

  t.deepEqual(fake.calls(), [], 'dry runs call no ssh, scp, curl');
});

test('provisioning: fleet.sh runs VMs in parallel, prints a per-VM table and exits 1 when one VM failed', async (t) => {
  const fake = fakeBin(t);
  const r = await sh([join(P, 'fleet.sh'), '-i', EXAMPLE, '--only', 'vm01,vm02,vm03', 'status'], {
    env: { PATH: `${fake.dir}:${process.env.PATH}`, FAIL_HOSTS: 'root@10.10.0.12' },
  });
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stdout, /^VM +TARGET +RESULT +DETAIL\n/);
  t.regex(r.stdout, /\nvm01 +root@10\.10\.0\.11 +ok +fake ssh ok\n/);
  t.regex(r.stdout, /\nvm02 +root@10\.10\.0\.12 +FAILED +ssh: connect to host 10\.10\.0\.12 port 22: Connection refused\n/);
  t.regex(r.stdout, /\nvm03 +root@10\.10\.0\.13 +ok /);
  t.regex(r.stdout, /fleet\.sh status: 2 ok, 1 failed \(ssh\)\n$/);
  t.true(r.stderr.includes('-- vm02 failed (exit 255); its output:'));
  t.is(fake.calls().length, 3);
  const ok = await sh([join(P, 'fleet.sh'), '-i', EXAMPLE, '--only', 'vm01', 'status'], { env: { PATH: `${fake.dir}:${process.env.PATH}` } });
  t.is(ok.code, 0);
});

test('provisioning: host-tune.sh writes its files once, then reports every item unchanged', async (t) => {
  const root = tmp();
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const args = [join(P, 'host-tune.sh'), '--root', root, '--source-ips', '10.10.1.1-10.10.1.2', '--iface', 'ens192', '--prefix', '16', '--chrony-server', '10.10.0.1'];
  const first = await sh(args);
  t.is(first.code, 0, first.stderr);
  t.is(first.stdout.trim().split('\n').pop(), 'host-tune.sh: 5 changed, 0 unchanged, 0 skipped');
  const second = await sh(args);
  t.is(second.stdout.trim().split('\n').pop(), 'host-tune.sh: 0 changed, 5 unchanged, 0 skipped');
  const sysctl = readFileSync(join(root, 'etc/sysctl.d/90-hongbao.conf'), 'utf8');
  for (const line of [
    'fs.file-max = 2097152',
    'fs.nr_open = 1048576',
    'net.ipv4.ip_local_port_range = 1024 65535',
    'net.core.somaxconn = 65535',
    'net.ipv4.tcp_max_syn_backlog = 65535',
    'net.ipv4.tcp_tw_reuse = 1',
    'net.ipv4.tcp_fin_timeout = 15',
    'net.ipv4.tcp_keepalive_time = 300',
  ])
    t.true(sysctl.includes(`\n${line}\n`), line);
  t.true(readFileSync(join(root, 'etc/security/limits.d/90-hongbao.conf'), 'utf8').includes('\nhongbao hard nofile 1048576\n'));
  t.true(readFileSync(join(root, 'etc/systemd/system.conf.d/90-hongbao.conf'), 'utf8').includes('\nDefaultLimitNOFILE=1048576\n'));
  const aliases = readFileSync(join(root, 'etc/systemd/system/hongbao-ip-aliases.service'), 'utf8');
  t.true(aliases.includes('\nExecStart=/sbin/ip addr replace 10.10.1.1/16 dev ens192\nExecStart=/sbin/ip addr replace 10.10.1.2/16 dev ens192\n'));
  t.true(readFileSync(join(root, 'etc/chrony/conf.d/hongbao-client.conf'), 'utf8').endsWith('\nserver 10.10.0.1 iburst prefer minpoll 4 maxpoll 6\nmakestep 0.1 3\n'));
  const serve = await sh([join(P, 'host-tune.sh'), '--root', root, '--chrony-serve', '10.10.0.0/16']);
  t.true(serve.stdout.includes(`changed ${root}/etc/chrony/conf.d/hongbao-server.conf`));
  t.true(readFileSync(join(root, 'etc/chrony/conf.d/hongbao-server.conf'), 'utf8').endsWith('\nallow 10.10.0.0/16\nlocal stratum 8\n'));
  const bad = await sh([join(P, 'host-tune.sh'), '--root', root, '--source-ips', '10.0.0.9-10.0.0.1']);
  t.is(bad.code, 2);
  t.is(bad.stderr.trim(), "host-tune.sh: --source-ips: range '10.0.0.9-10.0.0.1' ends before it starts (see host-tune.sh --help)");
});

test('provisioning: host-tune.sh --dry-run prints what it would change and changes nothing', async (t) => {
  const before = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
  const r = await sh([join(P, 'host-tune.sh'), '--dry-run', '--source-ips', '198.18.250.1', '--iface', 'lo', '--chrony-server', '10.10.0.1']);
  t.is(r.code, 0, r.stderr);
  t.true(r.stdout.includes('would write /etc/sysctl.d/90-hongbao.conf (mode 0644):\n') || r.stdout.includes('unchanged /etc/sysctl.d/90-hongbao.conf'));
  t.true(r.stdout.includes('+ ip addr add 198.18.250.1/24 dev lo\n'));
  t.regex(r.stdout, /host-tune\.sh: \d+ to change, \d+ unchanged, 0 skipped\n$/);
  t.is(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'), before);
});

test('provisioning: esxi-clone.sh --dry-run prints the govc commands and the inventory lines', async (t) => {
  const fake = fakeBin(t);
  const r = await sh(
    [join(P, 'esxi-clone.sh'), '--dry-run', '--template', 'debian12-node20', '--count', '17', '--first-ip', '10.10.0.11', '--netmask', '255.255.0.0', '--gateway', '10.10.0.1', '--dns', '10.10.0.1', '--datastore', 'ds1', '--network', 'VM Network'],
    { env: { PATH: `${fake.dir}:${process.env.PATH}` } },
  );
  t.is(r.code, 0, r.stderr);
  t.true(r.stdout.startsWith('== hb-vm01 10.10.0.11\n+ govc find / -type m -name hb-vm01   # skip the clone if it prints a path\n'));
  t.true(r.stdout.includes("+ govc vm.clone -vm debian12-node20 -on=false -ds ds1 -net 'VM Network' hb-vm17\n"));
  t.true(r.stdout.includes('+ govc vm.customize -vm hb-vm17 -type Linux -name hb-vm17 -domain local -ip 10.10.0.27 -netmask 255.255.0.0 -gateway 10.10.0.1 -dns-server 10.10.0.1\n'));
  t.true(r.stdout.includes('+ govc vm.power -on=true hb-vm09\n+ govc vm.ip -wait 5m -v4 hb-vm09\n'));
  t.true(r.stdout.includes('# inventory lines (prefix=16; total-users=1020000):\nhb-vm01  root@10.10.0.11  10.10.1.1-10.10.1.2  0:60000\n'));
  t.true(r.stdout.endsWith('hb-vm17  root@10.10.0.27  10.10.17.1-10.10.17.2  960000:60000\n'));
  t.deepEqual(fake.calls(), []);
  // The printed lines make a valid inventory together with the settings.
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines = r.stdout.split('# inventory lines')[1].split('\n').slice(1).join('\n');
  writeFileSync(join(dir, 'inv'), `server=ws://10.10.0.2:1025\nprefix=16\n${lines}`);
  const check = await sh([join(P, 'fleet.sh'), '-i', join(dir, 'inv'), 'check']);
  t.is(check.code, 0, check.stderr);
  const bad = await sh([join(P, 'esxi-clone.sh'), '--dry-run', '--template', 't', '--first-ip', '10.0.0.250', '--netmask', '255.255.255.0', '--gateway', '10.0.0.1']);
  t.is(bad.code, 2);
  t.is(bad.stderr.trim(), "esxi-clone.sh: --first-ip 10.0.0.250 + 17 VMs leaves its /24 (see esxi-clone.sh --help)");
  const noGovc = await sh([join(P, 'esxi-clone.sh'), '--template', 't', '--count', '1', '--first-ip', '10.0.0.5', '--netmask', '255.255.255.0', '--gateway', '10.0.0.1'], { env: { PATH: '/usr/bin:/bin', GOVC_URL: '' } });
  t.is(noGovc.code, 1);
  t.regex(noGovc.stderr, /^esxi-clone\.sh: govc not found: install it/);
});

test('provisioning: netns.sh and fleet-local.sh --dry-run print their plan and change nothing', async (t) => {
  const up = await sh([join(P, 'netns.sh'), 'up', '--dry-run', '--run-id', 'dry1', '--count', '2', '--ips', '2']);
  t.is(up.code, 0, up.stderr);
  t.true(up.stdout.includes('+ ip link add hbdry1br type bridge\n'));
  t.regex(up.stdout, /\+ ip addr add 198\.1[89]\.\d+\.1\/20 dev hbdry1br\n/);
  t.true(up.stdout.includes('+ ip netns add hb-dry1-vm2\n'));
  t.true(up.stdout.includes('+ ip link add hbdry1v2 type veth peer name hbdry1p2 netns hb-dry1-vm2\n'));
  t.true(up.stdout.includes('+ ip -n hb-dry1-vm2 link set hbdry1p2 name eth0\n'));
  t.false(existsSync('/tmp/hongbao-netns/dry1'));
  t.false(existsSync('/run/netns/hb-dry1-vm1'));
  const local = await sh([join(P, 'fleet-local.sh'), '--dry-run', '--run-id', 'dry2']);
  t.is(local.code, 0, local.stderr);
  t.regex(local.stdout, /\/fleet\.sh --transport netns --run-id dry2 --inventory \/tmp\/hongbao-netns\/dry2\/inventory --dist \S+\/dist\/hongbao\.cjs qps 300\n/);
  t.regex(local.stdout, /\+ node \S+\/dist\/hongbao\.cjs controller --host BRIDGE_IP --port 0 --stub http:\/\/BRIDGE_IP:STUB_HTTP_PORT /);
  const sshd = await sh([join(P, 'netns.sh'), 'up', '--dry-run', '--run-id', 'dry3', '--count', '2', '--ips', '1', '--sshd']);
  t.is(sshd.code, 0, sshd.stderr);
  t.true(sshd.stdout.includes("+ ssh-keygen -q -t ed25519 -N '' -C 'hongbao test bed dry3 client' -f /tmp/hongbao-netns/dry3/ssh/id_ed25519\n"));
  t.regex(sshd.stdout, /\+ ip netns exec hb-dry3-vm2 \/usr\/sbin\/sshd -f \/tmp\/hongbao-netns\/dry3\/ssh\/sshd-vm2\.conf -E \/tmp\/hongbao-netns\/dry3\/ssh\/sshd-vm2\.log\n/);
  t.false(existsSync('/tmp/hongbao-netns/dry3'));
  const overSsh = await sh([join(P, 'fleet-local.sh'), '--dry-run', '--ssh', '--run-id', 'dry4']);
  t.regex(overSsh.stdout, /\/netns\.sh up --run-id dry4 --count 3 --ips 2 --sshd --inventory /);
  t.regex(overSsh.stdout, /\/fleet\.sh --inventory \/tmp\/hongbao-netns\/dry4\/inventory --dist \S+ start\n/, 'the default (ssh) transport');
  const bad = await sh([join(P, 'netns.sh'), 'up', '--run-id', 'Bad_Id', '--count', '2']);
  t.is(bad.code, 2);
  t.is(bad.stderr.trim(), "netns.sh: --run-id must be 1-6 of a-z, 0-9, got 'Bad_Id' (see netns.sh --help)");
});

const hasChronyd = spawnSync('chronyd', ['--version']).status === 0;
(hasChronyd ? test : test.skip)(`provisioning: host-tune.sh makes its chrony makestep the one chronyd keeps (Debian's chrony.conf sets its own after conf.d)${hasChronyd ? '' : ' (skipped: chronyd not installed: apt-get install chrony)'}`, async (t) => {
  const root = tmp();
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  // The lines of Debian 12's /etc/chrony/chrony.conf that matter: conf.d first, makestep last.
  const debian = ['confdir /etc/chrony/conf.d', 'pool 2.debian.pool.ntp.org iburst', 'driftfile /var/lib/chrony/chrony.drift', 'rtcsync', 'makestep 1 3', 'leapsectz right/UTC', ''].join('\n');
  const main = join(root, 'etc/chrony/chrony.conf');
  const printed = () => {
    // chronyd -p prints the configuration it would run with, conf.d included (here: under root).
    const copy = join(root, 'check.conf');
    writeFileSync(copy, readFileSync(main, 'utf8').replace('confdir /etc/chrony/conf.d', `confdir ${root}/etc/chrony/conf.d`));
    const r = spawnSync('chronyd', ['-p', '-f', copy], { encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter((l) => l.startsWith('makestep'));
  };
  const args = [join(P, 'host-tune.sh'), '--root', root, '--chrony-server', '10.10.0.1'];
  await sh(args);
  writeFileSync(main, debian);
  t.deepEqual(printed(), ['makestep 0.1 3', 'makestep 1 3'], "without the fix Debian's makestep comes last and wins");
  const fix = await sh(args);
  t.is(fix.code, 0, fix.stderr);
  t.true(fix.stdout.includes(`changed ${root}/etc/chrony/chrony.conf`), fix.stdout);
  t.deepEqual(printed(), ['makestep 0.1 3']);
  t.true(readFileSync(main, 'utf8').includes('\n# makestep 1 3   # hongbao: conf.d/hongbao-client.conf sets makestep\n'));
  const again = await sh(args);
  t.regex(again.stdout, /host-tune\.sh: 0 changed, \d+ unchanged/);
});

test('provisioning: host-tune.sh installs chrony after apt-get update (a cloned VM may have no package lists)', async (t) => {
  // --dry-run on a PATH without chronyd: the plan, in order.
  const bin = tmp();
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  for (const tool of ['bash', 'cat', 'sed', 'grep', 'tr', 'sort', 'mkdir', 'mktemp', 'dirname', 'basename', 'ip', 'awk', 'sysctl']) {
    const real = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (real) spawnSync('ln', ['-s', real, join(bin, tool)]);
  }
  const r = await sh([join(P, 'host-tune.sh'), '--dry-run', '--chrony-server', '10.10.0.1'], { env: { PATH: bin } });
  if (existsSync('/usr/sbin/chronyd')) {
    // host-tune.sh also looks for /usr/sbin/chronyd itself: installed here, nothing to install.
    t.false(r.stdout.includes('apt-get install'), r.stdout);
  } else {
    t.regex(r.stdout, /\+ apt-get update -qq\n\+ apt-get install -y --no-install-recommends chrony\n/);
  }
  t.is(r.code, 0, r.stderr);
});

const isRoot = process.getuid?.() === 0;
(isRoot ? test : test.skip)(`provisioning: agentctl.sh without systemd runs the unit's ExecStart as its User=, with its LimitNOFILE and EnvironmentFile, in a session of its own; stop ends it${isRoot ? '' : ' (skipped: needs root)'}`, async (t) => {
  const root = tmp();
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const ctl = (...a: string[]) => sh([join(P, 'agentctl.sh'), '--root', root, ...a]);
  const unitDir = join(root, 'etc/systemd/system');
  spawnSync('mkdir', ['-p', unitDir, join(root, 'etc/hongbao')]);
  const unit = (exec: string) =>
    writeFileSync(join(unitDir, 'hongbao-agent.service'), `[Service]\nUser=daemon\nEnvironmentFile=-${root}/etc/hongbao/agent.env\nExecStart=${exec}\nLimitNOFILE=4096\nTimeoutStopSec=5\n`);
  writeFileSync(join(root, 'etc/hongbao/agent.env'), 'HONGBAO_TOKEN="t0k en"\n', { mode: 0o600 });
  unit('/bin/sleep 300');
  t.is((await ctl('mode')).stdout, 'direct\n', 'a unit under --root is never the live one');
  const start = await ctl('start');
  t.is(start.code, 0, start.stdout + start.stderr);
  const pid = Number(start.stdout.match(/^started: pid (\d+) \(user daemon, nofile 4096, no systemd: the unit's ExecStart\)\n$/)?.[1]);
  t.true(pid > 0, start.stdout);
  t.teardown(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // stopped already
    }
  });
  t.regex(readFileSync(`/proc/${pid}/status`, 'utf8'), /\nUid:\t1\t1\t1\t1\n/);
  t.regex(readFileSync(`/proc/${pid}/limits`, 'utf8'), /\nMax open files +4096 +4096 +files/);
  t.is(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), '/bin/sleep\u0000300\u0000');
  const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  for (const e of ['HONGBAO_TOKEN=t0k en', 'USER=daemon', 'HOME=/usr/sbin', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']) t.true(env.includes(e), `${e} in ${env.join(' ')}`);
  t.is(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[3], String(pid), 'the agent leads a session of its own');
  t.is(readFileSync(join(root, 'run/hongbao-agent.pid'), 'utf8').trim(), String(pid));
  t.is((await ctl('start')).stdout, `already running: pid ${pid}\n`);
  t.is((await ctl('status')).stdout, `running pid ${pid}, \n`);
  const stop = await ctl('stop');
  t.is(stop.stdout, `stopped pid ${pid}\n`);
  t.false(existsSync(`/proc/${pid}`));
  const status = await ctl('status');
  t.is(status.code, 1);
  t.is(status.stdout, 'stopped\n');
  // A configuration error (exit 2) is reported at once, with the agent's own words.
  unit("/bin/sh -c 'echo \"hongbao agent: --users: bad\" >&2; exit 2'");
  const bad = await ctl('start');
  t.is(bad.code, 1);
  t.regex(bad.stdout, /^agent exited at once; last lines of \S+\/var\/log\/hongbao-agent\.log:\nhongbao agent: --users: bad\n$/);
});

const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;
(hasAnalyze ? test : test.skip)(`provisioning: agentctl.sh verify runs systemd-analyze verify on the rendered unit and fails on a broken one${hasAnalyze ? '' : ' (skipped: systemd-analyze not installed: apt-get install systemd)'}`, async (t) => {
  const root = tmp();
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const unitPath = join(root, 'etc/systemd/system/hongbao-agent.service');
  spawnSync('mkdir', ['-p', join(root, 'etc/systemd/system')]);
  const rendered = (await sh([join(P, 'fleet.sh'), '-i', EXAMPLE, 'unit', 'vm03'])).stdout.replace('ExecStart=/usr/bin/node ', `ExecStart=${process.execPath} `);
  writeFileSync(unitPath, rendered);
  const ok = await sh([join(P, 'agentctl.sh'), '--root', root, 'verify']);
  t.is(ok.code, 0, ok.stdout + ok.stderr);
  t.is(ok.stdout, `unit verified: systemd-analyze verify ${unitPath}: no warnings\n`);
  writeFileSync(unitPath, rendered.replace('Restart=on-failure', 'Restart=sometimes'));
  const ignored = await sh([join(P, 'agentctl.sh'), '--root', root, 'verify']);
  t.is(ignored.code, 1);
  t.true(ignored.stderr.includes('Failed to parse service restart specifier'), ignored.stderr);
  writeFileSync(unitPath, rendered.replace(`ExecStart=${process.execPath} `, 'ExecStart=/nonexistent/node '));
  const missing = await sh([join(P, 'agentctl.sh'), '--root', root, 'verify']);
  t.is(missing.code, 1);
  t.true(missing.stderr.includes('Command /nonexistent/node is not executable'), missing.stderr);
});

test('provisioning: fleet.sh ansible-inventory gives the playbooks the values fleet.sh itself uses', async (t) => {
  const r = await sh([join(P, 'fleet.sh'), '-i', EXAMPLE, 'ansible-inventory']);
  t.is(r.code, 0, r.stderr);
  const inv = JSON.parse(r.stdout);
  t.is(inv.hongbao_agents.hosts.length, 17);
  t.deepEqual(inv.hongbao_controller.hosts, ['controller']);
  t.regex(inv.hongbao_agents.vars.hb_dist, /\/dist\/hongbao\.cjs$/);
  const vm17 = inv._meta.hostvars.vm17;
  const check = await sh([join(P, 'fleet.sh'), '-i', EXAMPLE, 'check']);
  t.is(`vm17 (line 36, root@10.10.0.27): ${vm17.hb_exec_start}`, check.stdout.trim().split('\n').at(-1) ?? '');
  t.like(vm17, { ansible_host: '10.10.0.27', ansible_user: 'root', hb_name: 'vm17', hb_user: 'hongbao', hb_nofile: '1048576', hb_env_path: '/etc/hongbao/agent.env', hb_fsroot: '', hb_install_dir: '/opt/hongbao', hb_unit_path: '/etc/systemd/system/hongbao-agent.service', hb_control_url: 'http://10.10.0.27:9090', hb_needs_token: true });
  t.deepEqual(vm17.hb_tune_args, ['--source-ips', '10.10.17.1-10.10.17.2', '--iface', 'auto', '--prefix', '16', '--user', 'hongbao', '--nofile', '1048576', '--chrony-server', '10.10.0.1']);
  t.like(inv._meta.hostvars.controller, { ansible_host: '10.10.0.1', ansible_user: 'root', hb_tune_args: ['--chrony-serve', '10.10.0.0/16'] });
  // A test-bed inventory: fsroot per VM, an ssh_config file (relative to the inventory), a port.
  const dir = tmp();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'ssh_config'), 'Host *\n');
  writeFileSync(join(dir, 'inv'), `server=ws://198.18.0.1:1025\nssh-config=ssh_config\nuser=daemon\nvm1 root@198.18.1.1:2222 198.18.1.10 0:10 fsroot=${dir}/vm1\n`);
  const bed = JSON.parse((await sh([join(P, 'fleet.sh'), '-i', join(dir, 'inv'), 'ansible-inventory'])).stdout)._meta.hostvars.vm1;
  t.like(bed, { ansible_host: '198.18.1.1', ansible_port: 2222, ansible_ssh_common_args: `-F ${dir}/ssh_config`, ansible_ssh_args: '', hb_fsroot: `${dir}/vm1`, hb_install_dir: `${dir}/vm1/opt/hongbao`, hb_env_path: `${dir}/vm1/etc/hongbao/agent.env`, hb_needs_token: false });
  t.deepEqual(bed.hb_tune_args.slice(-3), ['--root', `${dir}/vm1`, '--netns']);
  t.true(bed.hb_exec_start.startsWith(`/usr/bin/node ${dir}/vm1/opt/hongbao/hongbao.cjs agent --id vm1 `), bed.hb_exec_start);
  const dry = await sh([join(P, 'fleet.sh'), '-i', join(dir, 'inv'), '--dry-run', 'start']);
  t.true(dry.stdout.includes(`+ ssh -F ${dir}/ssh_config -o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=3 -p 2222 root@198.18.1.1 'bash ${dir}/vm1/opt/hongbao/agentctl.sh --root ${dir}/vm1 start'\n`), dry.stdout);
  writeFileSync(join(dir, 'inv2'), `server=ws://198.18.0.1:1025\nfsroot=/x\nssh-config=nope\nvm1 - 198.18.1.10 0:10 fsroot=rel/dir\n`);
  const bad = await sh([join(P, 'fleet.sh'), '-i', join(dir, 'inv2'), 'check']);
  t.is(bad.code, 2);
  t.true(bad.stderr.includes(`inv2:2: unknown setting 'fsroot'`), bad.stderr);
  t.true(bad.stderr.includes(`inv2:3: field 'ssh-config': ${dir}/nope is not readable`), bad.stderr);
  t.true(bad.stderr.includes(`inv2:4: field 'fsroot': 'rel/dir' is not an absolute directory path`), bad.stderr);
});

const hasAnsible = spawnSync('ansible-playbook', ['--version']).status === 0;
(hasAnsible ? test : test.skip)(`provisioning: every playbook passes ansible-playbook --syntax-check, with the example inventory through inventory.sh${hasAnsible ? '' : ' (skipped: ansible-playbook not installed: apt-get install ansible-core)'}`, async (t) => {
  const cwd = join(P, 'ansible');
  const env = { HONGBAO_INVENTORY: EXAMPLE, ANSIBLE_NOCOLOR: '1' };
  const graph = await runProcess('ansible-inventory', ['--graph'], { cwd, env, timeoutMs: 60000 });
  t.is(graph.code, 0, graph.stderr);
  t.regex(graph.stdout, /@hongbao_agents:\n( *\| *\|--vm\d\d\n){17}/);
  t.regex(graph.stdout, /@hongbao_controller:\n *\| *\|--controller\n/);
  // site.yml imports tune.yml, deploy.yml and start.yml.
  for (const book of ['site.yml', 'stop.yml', 'qps.yml']) {
    const r = await runProcess('ansible-playbook', ['--syntax-check', book], { cwd, env, timeoutMs: 60000 });
    t.is(r.code, 0, `${book}: ${r.stdout}${r.stderr}`);
  }
  // An inventory error stops Ansible with fleet.sh's message (exit 2 of the inventory script).
  const bad = await runProcess('ansible-playbook', ['--syntax-check', 'site.yml'], { cwd, env: { ...env, HONGBAO_INVENTORY: join(P, 'no-such-inventory') }, timeoutMs: 60000 });
  t.not(bad.code, 0);
  // (Ansible wraps its warnings at 80 columns.)
  t.true((bad.stdout + bad.stderr).replace(/\n/g, '').includes('fleet.sh: inventory /'), bad.stdout + bad.stderr);
  t.true((bad.stdout + bad.stderr).replace(/\n/g, '').includes('no-such-inventory: not readable'), bad.stdout + bad.stderr);
});
