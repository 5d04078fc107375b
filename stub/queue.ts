// A FIFO of u32 envelope ids in a growable ring: no allocation per push or pop.
export class U32Queue {
  private buf: Uint32Array;
  private head = 0;
  private size = 0;

  constructor(capacity = 16) {
    this.buf = new Uint32Array(capacity);
  }

  get length(): number {
    return this.size;
  }

  push(value: number): void {
    if (this.size === this.buf.length) this.grow();
    this.buf[(this.head + this.size) % this.buf.length] = value;
    this.size++;
  }

  /** Oldest value, or -1 when empty. */
  shift(): number {
    if (this.size === 0) return -1;
    const v = this.buf[this.head];
    this.head = (this.head + 1) % this.buf.length;
    this.size--;
    return v;
  }

  private grow(): void {
    const next = new Uint32Array(this.buf.length * 2);
    for (let i = 0; i < this.size; i++) next[i] = this.buf[(this.head + i) % this.buf.length];
    this.buf = next;
    this.head = 0;
  }
}
