// Interrupt moderation for a process among many on few cores, as NICs coalesce interrupts
// (ethtool rx-usecs): after a turn of the event loop that handled network input, the thread
// sleeps `ms` (Atomics.wait: not runnable, no CPU) before polling again, so the next turn finds
// many sockets ready at once instead of waking for each message. On a machine where ~150
// processes share 2 cores a wake-up costs ~100-170 us of CPU (context switch, cold caches);
// batching several messages into one wake-up is what keeps 30k shakes/s within the 2 cores.
// Costs up to `ms` of extra latency per hop; 0 turns it off (the default).

const cell = new Int32Array(new SharedArrayBuffer(4));
let sleepMs = 0;
let armed = false;

function nap(): void {
  armed = false;
  Atomics.wait(cell, 0, 0, sleepMs);
}

/** Sets the pause after each turn with input (0: off). */
export function setCoalesce(ms: number): void {
  sleepMs = ms;
}

/** Call when input was handled: the loop pauses once after this turn. Cheap when already armed or off. */
export function coalesce(): void {
  if (armed || sleepMs <= 0) return;
  armed = true;
  setImmediate(nap);
}
