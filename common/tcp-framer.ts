// The raw-TCP transport of the original experiment: the same messages back to back on a stream,
// each starting with its u16 length. The framer cuts a byte stream into whole messages.
import { HEADER_BYTES, MAX_MESSAGE_BYTES } from './wire.ts';

export class LengthFramer {
  private pending: Buffer | undefined;

  /**
   * Feeds a chunk; calls `onMessage` for each whole message, in order. Returns an error text when the
   * stream carries an impossible length (the caller closes the connection), else undefined.
   */
  push(chunk: Buffer, onMessage: (msg: Buffer) => void): string | undefined {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let off = 0;
    while (buf.length - off >= 2) {
      const len = buf.readUInt16BE(off);
      if (len < HEADER_BYTES || len > MAX_MESSAGE_BYTES) return `message length ${len} is outside ${HEADER_BYTES}..${MAX_MESSAGE_BYTES}`;
      if (buf.length - off < len) break;
      onMessage(buf.subarray(off, off + len));
      off += len;
    }
    if (off < buf.length) this.pending = Buffer.from(buf.subarray(off));
    return undefined;
  }

  /** Bytes held while waiting for the rest of a message. */
  get buffered(): number {
    return this.pending?.length ?? 0;
  }
}
