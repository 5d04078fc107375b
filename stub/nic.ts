// Packets of a network interface, from /sys/class/net/IFACE/statistics.
import { readFileSync, readdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';

const SYS = '/sys/class/net';

export function readPackets(iface: string): { rx: number; tx: number } | undefined {
  try {
    return {
      rx: Number(readFileSync(`${SYS}/${iface}/statistics/rx_packets`, 'utf8')),
      tx: Number(readFileSync(`${SYS}/${iface}/statistics/tx_packets`, 'utf8')),
    };
  } catch {
    return undefined;
  }
}

/**
 * `auto`: lo when serving loopback; the interface that owns the listen address; for a wildcard
 * address, the interface that has received the most packets.
 */
export function chooseIface(wanted: string, host: string): string {
  if (wanted !== 'auto') return wanted;
  if (host.startsWith('127.') || host === 'localhost' || host === '::1') return 'lo';
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (addrs?.some((a) => a.address === host)) return name;
  }
  let best = 'lo';
  let most = -1;
  let names: string[] = [];
  try {
    names = readdirSync(SYS);
  } catch {
    return best;
  }
  for (const name of names) {
    if (name === 'lo') continue;
    const p = readPackets(name);
    if (p && p.rx > most) {
      most = p.rx;
      best = name;
    }
  }
  return best;
}
