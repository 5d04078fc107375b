// Outgoing frames are cut from large preallocated slabs instead of one allocation each. A slice is
// never reused: a socket may still hold it queued, so a full slab is simply left to the GC.
const SLAB_BYTES = 64 * 1024;

export class Slab {
  private buf = Buffer.allocUnsafe(SLAB_BYTES);
  private off = 0;

  /** A fresh slice of exactly `n` bytes (n <= 64 KiB). */
  take(n: number): Buffer {
    if (this.off + n > SLAB_BYTES) {
      this.buf = Buffer.allocUnsafe(SLAB_BYTES);
      this.off = 0;
    }
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += (n + 7) & ~7;
    return out;
  }
}
