// A small HDR-style log-linear histogram of non-negative integer values (the agent records latency
// in microseconds). Values below 128 have their own bucket; above, each power of two is split into
// 64 linear sub-buckets, so a bucket's width is at most 1/64 (~1.6 %) of its values. Values are
// clamped to 2^32 - 1 (71 minutes in us). 1728 buckets in a Uint32Array: recording is two integer
// operations and an increment; merging is a loop; encode() writes only the non-empty buckets.

const LINEAR = 128;
const SUB = 64;
const SUB_BITS = 6;
const MAX_SHIFT = 31 - SUB_BITS; // msb 31 -> shift 25
export const BUCKETS = LINEAR + MAX_SHIFT * SUB; // 1728
const MAX_VALUE = 0xffffffff;

/** Bucket of a value. */
export function bucketOf(v: number): number {
  if (v < LINEAR) return v < 0 ? 0 : v | 0;
  const x = v >= MAX_VALUE ? MAX_VALUE : v >>> 0;
  const msb = 31 - Math.clz32(x);
  const shift = msb - SUB_BITS; // >= 1
  return LINEAR + (shift - 1) * SUB + ((x >>> shift) - SUB);
}

/** Smallest value of a bucket. */
export function lowOf(b: number): number {
  if (b < LINEAR) return b;
  const shift = Math.floor((b - LINEAR) / SUB) + 1;
  const mant = ((b - LINEAR) % SUB) + SUB;
  return mant * 2 ** shift;
}

/** Largest value of a bucket. */
export function highOf(b: number): number {
  if (b < LINEAR) return b;
  const shift = Math.floor((b - LINEAR) / SUB) + 1;
  return lowOf(b) + 2 ** shift - 1;
}

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS);
  total = 0;
  max = 0;
  min = Infinity;

  record(v: number): void {
    this.counts[bucketOf(v)]++;
    this.total++;
    if (v > this.max) this.max = v;
    if (v < this.min) this.min = v;
  }

  merge(other: Histogram): this {
    if (other.total === 0) return this;
    const c = this.counts;
    const o = other.counts;
    for (let i = 0; i < BUCKETS; i++) if (o[i]) c[i] += o[i];
    this.total += other.total;
    if (other.max > this.max) this.max = other.max;
    if (other.min < this.min) this.min = other.min;
    return this;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.max = 0;
    this.min = Infinity;
  }

  /**
   * Value at percentile p (0..100): the upper edge of the bucket holding that rank, clamped to the
   * exact max (so it never overstates by more than one bucket width and p100 is the max). 0 when empty.
   */
  percentile(p: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil((Math.min(100, Math.max(0, p)) / 100) * this.total));
    let seen = 0;
    const c = this.counts;
    for (let i = 0; i < BUCKETS; i++) {
      seen += c[i];
      if (seen >= rank) return Math.max(this.min, Math.min(highOf(i), this.max));
    }
    return this.max;
  }

  /**
   * Compact text form: "h1:" + base64 of unsigned LEB128 varints: max, min (0 when empty), then
   * pairs (bucket gap since the previous non-empty bucket, count). Decodes to an equal histogram.
   */
  encode(): string {
    const out: number[] = [];
    const put = (n: number) => {
      let x = Math.floor(n);
      while (x >= 0x80) {
        out.push((x % 0x80) | 0x80);
        x = Math.floor(x / 0x80);
      }
      out.push(x);
    };
    put(this.max);
    put(this.total === 0 ? 0 : this.min);
    let prev = -1;
    const c = this.counts;
    for (let i = 0; i < BUCKETS; i++) {
      if (!c[i]) continue;
      put(i - prev - 1);
      put(c[i]);
      prev = i;
    }
    return 'h1:' + Buffer.from(out).toString('base64');
  }

  static decode(text: string): Histogram {
    if (!text.startsWith('h1:')) throw new Error('histogram: encoding must start with "h1:"');
    const bytes = Buffer.from(text.slice(3), 'base64');
    let pos = 0;
    const get = (): number => {
      let x = 0;
      let mul = 1;
      for (;;) {
        if (pos >= bytes.length) throw new Error('histogram: truncated encoding');
        const b = bytes[pos++];
        x += (b & 0x7f) * mul;
        if (b < 0x80) return x;
        mul *= 0x80;
        if (mul > 2 ** 56) throw new Error('histogram: varint too long');
      }
    };
    const h = new Histogram();
    h.max = get();
    const min = get();
    let i = -1;
    while (pos < bytes.length) {
      i += get() + 1;
      const n = get();
      if (i >= BUCKETS) throw new Error(`histogram: bucket ${i} out of range`);
      h.counts[i] += n;
      h.total += n;
    }
    h.min = h.total === 0 ? Infinity : min;
    return h;
  }
}
