// Addresses of this host, and the checks done once at the edge before anything listens or writes:
// a bad --host, --iface or --results is one line naming the flag and exit 2, never a stack trace, a
// restart loop or a spinning process.
import { existsSync, mkdirSync, readFileSync, readdirSync, accessSync, constants } from 'node:fs';
import { isIP, isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname, resolve } from 'node:path';
import { ConfigError } from './errors.ts';

export interface AddressFacts {
  /** CIDRs of every interface address. */
  addresses: string[];
  /** net.ipv4.ip_nonlocal_bind: any address can be bound. */
  nonlocalBind: boolean;
}

export function readAddressFacts(): AddressFacts {
  let nonlocalBind = false;
  try {
    nonlocalBind = readFileSync('/proc/sys/net/ipv4/ip_nonlocal_bind', 'utf8').trim() === '1';
  } catch {
    /* keep false */
  }
  const addresses = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && a.cidr !== null)
    .map((a) => a!.cidr!);
  return { addresses, nonlocalBind };
}

function v4(ip: string): number {
  return ip.split('.').reduce((a, b) => a * 256 + Number(b), 0);
}

/**
 * True when `ip` can be bound here: an address of an interface, or (IPv4) inside the subnet of a
 * loopback address such as 127.0.0.1/8 (Linux routes the whole block to lo), or anything when
 * ip_nonlocal_bind is on.
 */
export function isLocalAddress(ip: string, facts: AddressFacts): boolean {
  if (facts.nonlocalBind) return true;
  for (const cidr of facts.addresses) {
    const [addr, bits] = cidr.split('/');
    if (addr === ip) return true;
    if (isIPv4(ip) && isIPv4(addr) && addr.startsWith('127.')) {
      const n = Number(bits);
      const mask = n === 0 ? 0 : 2 ** 32 - 2 ** (32 - n);
      const net = (x: number) => Math.floor(x / 2 ** (32 - n)) * 2 ** (32 - n);
      if (mask && net(v4(ip)) === net(v4(addr))) return true;
    }
  }
  return false;
}

/** Refuses a listen address this host cannot bind: not an IP of it, 0.0.0.0, :: or localhost. */
export function assertListenable(command: string, flag: string, host: string, facts: AddressFacts = readAddressFacts()): void {
  if (host === 'localhost' || host === '0.0.0.0' || host === '::') return;
  if (!isIP(host)) {
    throw new ConfigError(`hongbao ${command}: --${flag} must be an IP address of this host, 0.0.0.0 or localhost, got ${JSON.stringify(host)}`);
  }
  if (!isLocalAddress(host, facts)) {
    throw new ConfigError(`hongbao ${command}: --${flag} ${host} is not an address of this host (\`ip -br addr\` lists them; 0.0.0.0 listens on all)`);
  }
}

/** Refuses a network interface that does not exist (Linux: /sys/class/net). */
export function assertIface(command: string, flag: string, iface: string): void {
  const sys = '/sys/class/net';
  if (!existsSync(sys) || existsSync(`${sys}/${iface}`)) return;
  let names: string[] = [];
  try {
    names = readdirSync(sys);
  } catch {
    /* listed as none */
  }
  throw new ConfigError(`hongbao ${command}: --${flag} ${iface} is not a network interface of this host (there are: ${names.sort().join(', ') || 'none'})`);
}

/**
 * Creates a results folder (and its parents) or refuses it, naming why. One level at a time, not
 * mkdirSync's recursive mode, which loops forever on some paths (a folder under /proc).
 */
export function assertWritableDir(command: string, flag: string, dir: string): void {
  try {
    const missing: string[] = [];
    let d = resolve(dir);
    while (!existsSync(d)) {
      missing.unshift(d);
      const up = dirname(d);
      if (up === d) break;
      d = up;
    }
    for (const m of missing) mkdirSync(m);
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(`hongbao ${command}: --${flag} ${dir} cannot hold results: ${e.code ?? e.message}`);
  }
}

/**
 * Runs a listen() on --flag's port; a port already taken or not allowed is one line naming the flag,
 * the port and what to do (exit 2), not a stack trace. Other errors pass through.
 */
export async function listenOrExplain<T>(command: string, flag: string, proto: 'TCP' | 'UDP', host: string, port: number, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const where = `${proto} port ${port} on ${host}`;
    if (code === 'EADDRINUSE') {
      const fix =
        proto === 'UDP' && port === 123
          ? 'an NTP server (chronyd or ntpd) answers there already: leave --ntp-serve off and give the agents --ntp HOST:123 of that server, or serve on another port'
          : `stop what holds it (ss -${proto === 'TCP' ? 't' : 'u'}lnp shows it) or choose another port (0: any free one)`;
      throw new ConfigError(`hongbao ${command}: --${flag} ${port}: ${where} is already in use: ${fix}`);
    }
    if (code === 'EACCES') {
      throw new ConfigError(`hongbao ${command}: --${flag} ${port}: ${where} is not allowed for this user (ports below 1024 need root or CAP_NET_BIND_SERVICE), or choose a port from 1024`);
    }
    throw err;
  }
}
