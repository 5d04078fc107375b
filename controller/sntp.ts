// A minimal SNTP server (RFC 4330, section 5) so a fleet without its own NTP server has one time
// source: answers each client request (mode 3) with a server reply (mode 4) carrying the receive
// and transmit timestamps of this host's clock. Stratum 1 with reference id "LOCL": the host clock
// is the reference, which is what the fleet needs (all agents agree with one clock).
import dgram from 'node:dgram';

const NTP_EPOCH_OFFSET_S = 2208988800;
const PACKET = 48;

/** Writes a unix time in ms as a 64-bit NTP timestamp at `off`. */
export function writeNtpTime(buf: Buffer, off: number, unixMs: number): void {
  const secs = Math.floor(unixMs / 1000) + NTP_EPOCH_OFFSET_S;
  const frac = Math.floor(((unixMs % 1000) / 1000) * 0x100000000);
  buf.writeUInt32BE(secs >>> 0, off);
  buf.writeUInt32BE(frac >>> 0, off + 4);
}

/** Reads a 64-bit NTP timestamp at `off` as unix ms. */
export function readNtpTime(buf: Buffer, off: number): number {
  return (buf.readUInt32BE(off) - NTP_EPOCH_OFFSET_S) * 1000 + (buf.readUInt32BE(off + 4) / 0x100000000) * 1000;
}

/** The reply to a request, or undefined when the request is not an SNTP client packet. */
export function sntpReply(req: Buffer, receivedMs: number, clock: () => number): Buffer | undefined {
  if (req.length < PACKET) return undefined;
  const mode = req[0] & 0x07;
  const version = (req[0] >> 3) & 0x07;
  if (mode !== 3 || version < 1 || version > 4) return undefined;
  const out = Buffer.alloc(PACKET);
  out[0] = (0 << 6) | (version << 3) | 4; // LI 0, same version, mode 4 (server)
  out[1] = 1; // stratum 1
  out[2] = req[2] || 6; // poll: echo the client's
  out[3] = 0xec; // precision 2^-20 s
  out.writeUInt32BE(0, 4); // root delay
  out.writeUInt32BE(0x00000010, 8); // root dispersion ~0.25 ms
  out.write('LOCL', 12, 'ascii'); // reference id
  writeNtpTime(out, 16, receivedMs); // reference timestamp
  req.copy(out, 24, 40, 48); // originate = client's transmit timestamp
  writeNtpTime(out, 32, receivedMs); // receive
  writeNtpTime(out, 40, clock()); // transmit
  return out;
}

export interface SntpServer {
  port: number;
  answered: () => number;
  close: () => Promise<void>;
}

/** Listens on udp4 host:port (0 picks a port) and answers SNTP requests. */
export function startSntp(host: string, port: number, clock: () => number = Date.now): Promise<SntpServer> {
  const sock = dgram.createSocket('udp4');
  let answered = 0;
  sock.on('message', (msg, rinfo) => {
    const reply = sntpReply(msg, clock(), clock);
    if (!reply) return;
    answered++;
    sock.send(reply, rinfo.port, rinfo.address);
  });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, host, () => {
      sock.off('error', reject);
      sock.on('error', () => undefined); // a bad peer must not take the controller down
      resolve({
        port: sock.address().port,
        answered: () => answered,
        close: () => new Promise<void>((r) => sock.close(() => r())),
      });
    });
  });
}
