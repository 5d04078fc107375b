// The agent's connect-phase report on stderr, once a second: connected / target, the login rate,
// what is in flight, failures by source IP and an ETA; once everyone is in, one "all logged in" line
// and the {"event":"connected"} line on stdout, then silence until someone drops again.
import type { ConnReport } from './ipc.ts';

export interface ProgressIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

export class ConnectProgress {
  private readonly started = Date.now();
  private announced = false;
  private lastLogins = 0;
  private lastLine = '';

  constructor(
    private readonly id: string,
    private readonly count: number,
    private readonly sourceIps: readonly string[],
    private readonly io: ProgressIo,
    private readonly tag = 'hongbao agent:',
  ) {}

  /** Called once a second with the workers' latest connection reports. */
  tick(reports: readonly ConnReport[]): void {
    const connected = reports.reduce((a, c) => a + c.connected, 0);
    const logins = reports.reduce((a, c) => a + c.logins, 0);
    const failures = reports.reduce((a, c) => a + c.failures, 0);
    if (!this.announced || connected < this.count || this.lastLine !== '') {
      const rate = Math.max(0, logins - this.lastLogins);
      const ipErr = new Map<string, number>();
      for (const c of reports) c.ipErrors.forEach((n, k) => n && ipErr.set(this.sourceIps[k] ?? 'default', (ipErr.get(this.sourceIps[k] ?? 'default') ?? 0) + n));
      const left = this.count - connected;
      const eta = left === 0 ? 0 : rate > 0 ? Math.ceil(left / rate) : -1;
      const errText = ipErr.size ? ` errors by source IP: ${[...ipErr].map(([ip, n]) => `${ip}=${n}`).join(' ')}; last: ${reports.find((c) => c.lastError)?.lastError ?? ''}` : '';
      const inFlight = reports.reduce((a, c) => a + c.connecting, 0);
      const window = reports.reduce((a, c) => a + c.window, 0);
      const line = `${this.tag} connected ${connected}/${this.count} (+${rate}/s) in flight ${inFlight} (window ${window}) failed ${failures}${errText}${eta > 0 ? `, ETA ${eta} s` : eta < 0 ? ', ETA unknown' : ''}`;
      if (line !== this.lastLine) this.io.stderr(line);
      // Once everyone is (back) in, stop printing until someone drops again.
      this.lastLine = connected === this.count && this.announced ? '' : line;
      if (!this.announced && connected === this.count) {
        this.announced = true;
        const seconds = (Date.now() - this.started) / 1000;
        this.io.stderr(`${this.tag} all ${this.count} users logged in after ${seconds.toFixed(1)} s (${failures} failed attempts retried)`);
        this.io.stdout(JSON.stringify({ event: 'connected', id: this.id, connected, failures, seconds }));
      }
    }
    this.lastLogins = logins;
  }
}
