// Reports from a worker process to its parent over the IPC channel (node:cluster).

function dropped(): void {
  // the parent is gone: nobody left to report to
}

/**
 * Sends `msg` to the parent while there is one. The parent may go between the check and the write
 * (SIGTERM to the whole group): the error then goes to a callback that drops it, never to an
 * unhandled 'error' event (EPIPE) that would kill the worker.
 */
export function sendToParent(msg: object): void {
  if (process.connected) process.send!(msg, undefined, undefined, dropped);
}
