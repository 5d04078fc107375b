// test/ensure-tools.sh, npm test's pretest: outside CI it never installs anything; in CI (or on
// `npm run setup:test`) it installs only what is missing; --undo takes back what it recorded.
// Tools are looked for in a folder of the test's own (ENSURE_TOOLS_PATH) and apt-get is a stub that
// logs its calls, so nothing here touches the machine's packages.
import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { runProcess } from './helpers/process.ts';

const SCRIPT = fileURLToPath(new URL('./ensure-tools.sh', import.meta.url));

/** The provisioning-over-ssh tools: present in the sandboxes below unless a test says otherwise. */
const SSH_TOOLS = ['sshd', 'ssh', 'systemd-analyze', 'ansible-playbook'];

/** A tools folder holding `present`, a stub apt-get on PATH, a state folder; the script's env. */
function sandbox(t: ExecutionContext, present: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'hb-tools-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tools = join(dir, 'tools');
  const bin = join(dir, 'bin');
  mkdirSync(tools);
  mkdirSync(bin);
  for (const name of present) {
    writeFileSync(join(tools, name), '#!/bin/sh\n');
    chmodSync(join(tools, name), 0o755);
  }
  const log = join(dir, 'apt-calls.log');
  writeFileSync(join(bin, 'apt-get'), `#!/bin/sh\necho "apt-get $*" >> ${log}\n`);
  chmodSync(join(bin, 'apt-get'), 0o755);
  const env = { PATH: `${bin}:${process.env.PATH}`, ENSURE_TOOLS_PATH: tools, ENSURE_TOOLS_STATE: join(dir, 'state'), CI: '' };
  return { env, state: join(dir, 'state', 'test-tools'), calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []) };
}

test('ensure-tools: outside CI it lists the missing tools and the tests they skip, installs nothing, exits 0', async (t) => {
  const box = sandbox(t, ['chronyd', 'ip', 'ssh', 'systemd-analyze']);
  const r = await runProcess('bash', [SCRIPT], { env: box.env });
  t.is(r.code, 0, r.stderr);
  t.true(r.stderr.includes('ensure-tools: missing chromium shellcheck curl openssh-server ansible-core; these tests will be skipped:'), r.stderr);
  t.regex(r.stderr, /chromium \(chromium\): dashboard/);
  t.regex(r.stderr, /ansible-core \(ansible-playbook\): provisioning-ssh/);
  t.regex(r.stderr, /sudo npm run setup:test/);
  t.false(r.stderr.includes('chrony (chronyd)'), r.stderr);
  t.deepEqual(box.calls(), []);
});

test('ensure-tools: nothing missing prints nothing and exits 0', async (t) => {
  const box = sandbox(t, ['chronyd', 'chromium', 'shellcheck', 'ip', 'curl', ...SSH_TOOLS]);
  const r = await runProcess('bash', [SCRIPT], { env: { ...box.env, CI: 'true' } });
  t.is(r.code, 0);
  t.is(r.stdout + r.stderr, '');
  t.deepEqual(box.calls(), []);
});

test('ensure-tools: CI=true and --install install only the missing packages (dry run: what it would do)', async (t) => {
  const box = sandbox(t, ['chronyd', 'chromium', 'ip', ...SSH_TOOLS]);
  for (const [args, env] of [
    [['--dry-run'], { CI: 'true' }],
    [['--install', '--dry-run'], {}],
  ] as const) {
    const r = await runProcess('bash', [SCRIPT, ...args], { env: { ...box.env, ...env } });
    t.is(r.code, 0, r.stderr);
    t.true(r.stderr.includes('+ apt-get install -y -qq --no-install-recommends shellcheck curl\n'), r.stderr);
    t.regex(r.stderr, /\+ record in .*test-tools: installed /);
  }
  // A dry run only asks apt-get what an install would remove (-s: simulate).
  t.true(box.calls().every((c) => c.startsWith('apt-get install -s ')), box.calls().join('\n'));
  t.false(existsSync(box.state));
});

test('ensure-tools: --undo purges what an install recorded and reinstalls what it removed', async (t) => {
  const box = sandbox(t, []);
  const none = await runProcess('bash', [SCRIPT, '--undo'], { env: box.env });
  t.is(none.code, 0);
  t.regex(none.stdout, /nothing to undo/);
  mkdirSync(join(box.state, '..'), { recursive: true });
  writeFileSync(box.state, 'installed chrony\ninstalled shellcheck\nremoved systemd-timesyncd\n');
  const r = await runProcess('bash', [SCRIPT, '--undo', '--dry-run'], { env: box.env });
  t.is(r.code, 0, r.stderr);
  t.true(r.stderr.includes('+ apt-get purge -y -qq chrony shellcheck\n+ apt-get install -y -qq --no-install-recommends systemd-timesyncd\n'), r.stderr);
  t.regex(r.stdout, /undone: purged chrony shellcheck; reinstalled systemd-timesyncd/);
  t.deepEqual(box.calls(), []);
  t.true(existsSync(box.state), 'a dry run keeps the record');
});
