// Pushes to the controller: registers with POST /agents and sends one sample per complete second
// with POST /agents/:id/samples. The controller may be absent or restarting: failures are
// reported on stderr (first failure, then at most every 30 s, and the recovery), never thrown, and
// registration is retried every 5 s until it succeeds. Each request is bounded by a timeout.
// Samples wait in a bounded queue and go out in order, so a slow or briefly absent controller gets
// them late (they land in their own second there) instead of never; past the bound the oldest are
// dropped and counted. A controller that restarted answers 404 (it does not know us): we register
// again, and its answer names the first second it still takes samples for (`resendFrom`): the
// seconds from there that we had pushed to its predecessor go out again (replay).
export interface PushIo {
  stderr: (line: string) => void;
}

/** A sample: one second of this agent's counters. */
export type Sample = Record<string, unknown> & { second: number };

/** A request the controller answered with an error status. */
class Refused extends Error {
  constructor(
    path: string,
    readonly status: number,
    text: string,
  ) {
    super(`${path} answered ${status} ${text.slice(0, 200)}`);
  }
}

const QUIET_MS = 30_000;
/** Samples kept while the controller is slow or away: five minutes of seconds. */
export const MAX_QUEUED_SAMPLES = 300;

export class ControllerPush {
  private registered = false;
  private lastRegisterTry = 0;
  private failing = false;
  private lastReport = 0;
  private failures = 0;
  private inFlight = false;
  private readonly queue: Sample[] = [];
  pushed = 0;
  /** Samples dropped because the queue was full. */
  dropped = 0;

  constructor(
    private readonly base: string,
    private readonly id: string,
    private readonly registration: () => Record<string, unknown>,
    private readonly token: string | undefined,
    private readonly io: PushIo,
    /** Samples of the seconds from `from` on that were pushed already (for a controller that lost them). */
    private readonly replay: (from: number) => Sample[] = () => [],
  ) {}

  private async post(path: string, body: unknown): Promise<unknown> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await fetch(new URL(path, this.base), { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(2000) });
    const text = await res.text().catch(() => '');
    if (!res.ok) throw new Refused(path, res.status, text);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return undefined;
    }
  }

  /** Puts the replayed seconds the queue does not hold already in front of it, oldest first. */
  private requeue(from: number): void {
    const queued = new Set(this.queue.map((q) => q.second));
    const again = this.replay(from).filter((q) => !queued.has(q.second));
    if (again.length === 0) return;
    this.queue.unshift(...again);
    this.queue.sort((a, b) => a.second - b.second);
    while (this.queue.length > MAX_QUEUED_SAMPLES) {
      this.queue.shift();
      this.dropped++;
    }
  }

  private failed(what: string, err: unknown): void {
    this.failures++;
    const now = Date.now();
    if (!this.failing || now - this.lastReport >= QUIET_MS) {
      const msg = (err as Error)?.cause ? `${(err as Error).message} (${String(((err as Error).cause as Error)?.message ?? (err as Error).cause)})` : (err as Error)?.message;
      this.io.stderr(`hongbao agent: controller ${this.base} ${what} failed (${this.failures} failures so far): ${msg}; will keep trying`);
      this.lastReport = now;
    }
    this.failing = true;
  }

  private ok(): void {
    if (this.failing) this.io.stderr(`hongbao agent: controller ${this.base} reachable again`);
    this.failing = false;
  }

  /** Called with the sample of each second that is due (several per second after a pause, one more for an amended second), or undefined just to drain. Never rejects. */
  async tick(sample: Sample | undefined): Promise<void> {
    if (sample) {
      this.queue.push(sample);
      if (this.queue.length > MAX_QUEUED_SAMPLES) {
        this.queue.shift();
        this.dropped++;
      }
    }
    if (this.inFlight) return; // the running drain takes this sample too
    this.inFlight = true;
    try {
      if (!this.registered) {
        if (Date.now() - this.lastRegisterTry < 5000) return;
        this.lastRegisterTry = Date.now();
        try {
          const answer = (await this.post('/agents', this.registration())) as { resendFrom?: number | null } | undefined;
          this.registered = true;
          this.ok();
          if (typeof answer?.resendFrom === 'number') this.requeue(answer.resendFrom);
        } catch (err) {
          this.failed('registration (POST /agents)', err);
          return;
        }
      }
      while (this.queue.length > 0) {
        try {
          await this.post(`/agents/${encodeURIComponent(this.id)}/samples`, this.queue[0]);
          this.queue.shift();
          this.pushed++;
          this.ok();
        } catch (err) {
          this.failed('sample push', err);
          const status = err instanceof Refused ? err.status : 0;
          // A controller that restarted forgets us: 404 means register again.
          if (status === 404) this.registered = false;
          // A sample the controller rejects as invalid would block the queue forever.
          if (status === 400) this.queue.shift();
          return;
        }
      }
    } finally {
      this.inFlight = false;
    }
  }

  /** Samples waiting to be pushed. */
  get queued(): number {
    return this.queue.length;
  }
}
