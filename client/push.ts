// Pushes to the controller (docs/reference.md, the agent): registers with POST /agents and sends one sample per
// second with POST /agents/:id/samples. The controller may be absent or restarting: failures are
// reported on stderr (first failure, then at most every 30 s, and the recovery), never thrown, and
// registration is retried every 5 s until it succeeds. Each request is bounded by a timeout.
// Samples wait in a bounded queue and go out in order, so a slow or briefly absent controller gets
// them late (they land in their own second there) instead of never; past the bound the oldest are
// dropped and counted.
export interface PushIo {
  stderr: (line: string) => void;
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
  private readonly queue: Array<Record<string, unknown>> = [];
  pushed = 0;
  /** Samples dropped because the queue was full. */
  dropped = 0;

  constructor(
    private readonly base: string,
    private readonly id: string,
    private readonly registration: () => Record<string, unknown>,
    private readonly token: string | undefined,
    private readonly io: PushIo,
  ) {}

  private async post(path: string, body: unknown): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await fetch(new URL(path, this.base), { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(2000) });
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      throw new Error(`${path} answered ${res.status} ${text.slice(0, 200)}`);
    }
    await res.arrayBuffer().catch(() => undefined);
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

  /** Called once a second with the sample of a settled second. Never rejects. */
  async tick(sample: Record<string, unknown> | undefined): Promise<void> {
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
          await this.post('/agents', this.registration());
          this.registered = true;
          this.ok();
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
          // A controller that restarted forgets us: 404 means register again.
          if (/answered 404/.test((err as Error).message)) this.registered = false;
          // A sample the controller rejects as invalid would block the queue forever.
          if (/answered 400/.test((err as Error).message)) this.queue.shift();
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
