// Pre-flight checks before the first connection: ephemeral ports per source address and open files
// per worker process, and the default worker count. Everything reads from an injectable `HostFacts`
// so the rules are unit-tested without touching /proc.
import { readFileSync } from 'node:fs';
import { autobindReserve, openFileLimit } from '../common/limits.ts';
import { availableParallelism } from 'node:os';
import { isLocalAddress, readAddressFacts } from '../common/addresses.ts';
import { ConfigError } from '../common/errors.ts';

export interface HostFacts {
  /** net.ipv4.ip_local_port_range. */
  portLow: number;
  portHigh: number;
  /** Soft and hard limit of open files of this process (RLIMIT_NOFILE). */
  nofileSoft: number;
  nofileHard: number;
  cores: number;
  /** Addresses of this host with their prefix length (CIDR), e.g. 127.0.0.1/8, 10.0.0.5/24. */
  addresses: string[];
  /** net.ipv4.ip_nonlocal_bind = 1: any address may be bound. */
  nonlocalBind: boolean;
}

/** Sockets one worker holds at most, however high the fd limit (keeps each process's heap and loop small). */
export const MAX_USERS_PER_WORKER = 15_000;
/** Files a worker needs besides its sockets (IPC, stdio, libuv, DNS, spare). */
export const FD_RESERVE = 200;
/** Users one worker gets by default before another core is worth using. */
const USERS_PER_CORE_STEP = 10_000;

export function readHostFacts(): HostFacts {
  let portLow = 32768;
  let portHigh = 60999;
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo) [portLow, portHigh] = [lo, hi];
  } catch {
    /* not Linux: keep the Linux defaults */
  }
  const { soft: nofileSoft, hard: nofileHard } = openFileLimit();
  const { addresses, nonlocalBind } = readAddressFacts();
  return { portLow, portHigh, nofileSoft, nofileHard, cores: availableParallelism(), addresses, nonlocalBind };
}

/** Throws a ConfigError naming the first --source-ip address this host cannot bind. */
export function checkSourceIps(ips: readonly string[], facts: Pick<HostFacts, 'addresses' | 'nonlocalBind'>): void {
  const missing = ips.filter((ip) => !isLocalAddress(ip, facts));
  if (missing.length > 0) {
    throw new ConfigError(
      `hongbao agent: --source-ip ${missing[0]}${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''} is not an address of this host: ` +
        `add it (ip addr add ${missing[0]}/24 dev IFACE; provisioning/host-tune.sh --source-ips does this) or drop it from --source-ip`,
    );
  }
}

/** Sockets a worker may hold: well below its fd limit (75 % of what is left after the reserve). */
export function usersPerWorkerLimit(facts: HostFacts): number {
  return Math.max(1, Math.min(MAX_USERS_PER_WORKER, Math.floor((facts.nofileSoft - FD_RESERVE) * 0.75)));
}

/**
 * Default worker count: as many as the fd limit requires; beyond that one per 10000 users up to the
 * number of cores (more processes than cores only add context switches).
 */
export function defaultWorkers(users: number, facts: HostFacts): number {
  const forFds = Math.ceil(users / usersPerWorkerLimit(facts));
  const forCpu = Math.min(facts.cores, Math.ceil(users / USERS_PER_CORE_STEP));
  return Math.max(1, forFds, forCpu);
}

/** Throws a ConfigError naming the fix when the users cannot fit the host's ports or fds. */
export function preflight(users: number, sourceIps: number, workers: number, facts: HostFacts): void {
  // With source addresses each user binds a port of the range above the reserve; without, the kernel picks.
  const ports = facts.portHigh - facts.portLow + 1 - (sourceIps > 0 ? autobindReserve(facts) : 0);
  const perIp = Math.ceil(users / Math.max(1, sourceIps));
  if (perIp > ports) {
    const need = Math.ceil(users / ports);
    const where = sourceIps === 0 ? 'from the default source address' : `per --source-ip address (${sourceIps} given)`;
    throw new ConfigError(
      `hongbao agent: ${users} users need ${perIp} ephemeral ports ${where}, but net.ipv4.ip_local_port_range ${facts.portLow}-${facts.portHigh} has ${ports}` +
        `${sourceIps > 0 ? ` once ${autobindReserve(facts)} are left to the host's other connections` : ''}: ` +
        `give at least ${need} --source-ip addresses (e.g. --source-ip 10.0.0.1-${need}) or widen the range (sysctl -w net.ipv4.ip_local_port_range="1024 65535")`,
    );
  }
  const perWorker = Math.ceil(users / workers);
  if (perWorker + FD_RESERVE > facts.nofileSoft) {
    const need = Math.ceil(users / Math.max(1, facts.nofileSoft - FD_RESERVE));
    const raise = facts.nofileSoft < facts.nofileHard ? ` or raise the soft limit (ulimit -n ${facts.nofileHard}, LimitNOFILE= in the unit)` : ` (the hard limit ${facts.nofileHard} cannot be raised)`;
    throw new ConfigError(
      `hongbao agent: --workers ${workers} puts ${perWorker} sockets in one process, above its open-file limit of ${facts.nofileSoft} less ${FD_RESERVE} reserved: ` +
        `use --workers ${need} or more${raise}`,
    );
  }
}
