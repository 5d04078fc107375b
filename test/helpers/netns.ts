// Shared by the provisioning tests that run the fleet in network namespaces of this machine
// (provisioning/netns.sh): run ids, what a run leaves on the machine, the stub's peers.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { CLI, waitFor } from './process.ts';

export const P = fileURLToPath(new URL('../../provisioning/', import.meta.url));

const probe = spawnSync('bash', [join(P, 'netns.sh'), 'probe'], { encoding: 'utf8' });
/** Network namespaces can be made here (root, iproute2). */
export const netnsPermitted = probe.status === 0;
/** Why the namespace tests are skipped ('' when they are not), for the test titles. */
export const netnsWhy = netnsPermitted ? '' : ` (skipped: network namespaces not permitted here: ${(probe.stderr || probe.stdout).trim() || `netns.sh probe exited ${probe.status}`}; run as root with iproute2)`;
/** A run id (1-6 of a-z, 0-9) starting with `tag`, unique enough for parallel test files. */
export const runId = (tag: string) => `${tag}${(process.pid % 1296).toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`.slice(0, 6);
/** The value of `key=` in netns.sh's key=value output. */
export const kv = (out: string, key: string) => out.split('\n').find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1) ?? '';
export const namespacesOf = (run: string) => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.match(new RegExp(`^hb-${run}-\\S+`, 'gm')) ?? [];
export const linksOf = (run: string) => spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout.match(new RegExp(`: hb${run}(br|v\\d+)(?=[@:])`, 'g')) ?? [];
export const inNs = (ns: string, ...cmd: string[]) => spawnSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8' });

/** Established connections to the stub's port on the bridge address, counted per peer address. */
export function peers(bridgeIp: string, port: number): Record<string, number> {
  const out = spawnSync('ss', ['-tnH', 'state', 'established', `( sport = :${port} and src ${bridgeIp} )`], { encoding: 'utf8' }).stdout;
  const count: Record<string, number> = {};
  for (const line of out.trim().split('\n').filter(Boolean)) {
    const peer = line.trim().split(/\s+/).pop()!;
    const ip = peer.slice(0, peer.lastIndexOf(':'));
    count[ip] = (count[ip] ?? 0) + 1;
  }
  return count;
}

/** PIDs of processes whose command line names the run's directory (agents, workers, sshds, ssh masters). */
export function processesOf(run: string): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`/tmp/hongbao-netns/${run}/`)) found.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** A copy of dist/hongbao.cjs for this test (another test may rebuild dist/ while this one runs). */
export function snapshotBundle(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'hb-bundle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'hongbao.cjs');
  copyFileSync(CLI, path);
  return path;
}

/** The stub's shakes per second (from its /stats URL) around a QPS change due in second `at`. */
export async function shakesAround(statsUrl: string, at: number): Promise<(second: number) => number> {
  const secs = await waitFor(
    "the stub's counters up to the second after the change",
    async () => {
      const s = (await (await fetch(`${statsUrl}?since=${at - 2}`)).json()) as { seconds: Array<{ second: number; shakes: number }> };
      return s.seconds.some((x) => x.second === at + 1) && s.seconds;
    },
    20000,
    200,
  );
  return (second: number) => secs.find((x) => x.second === second)?.shakes ?? -1;
}

/** Within 5 % (at least 1) of the target. */
export const near = (have: number, target: number) => Math.abs(have - target) <= Math.ceil(target * 0.05);
