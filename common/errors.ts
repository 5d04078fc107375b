// Stable error codes shared by every program. Numbers travel in wire error frames (cmd 255);
// strings travel in HTTP error bodies. Both are listed in README.md ("Error codes"): never renumber.

/** Codes carried by a wire error frame (cmd 255), and the WebSocket close code that follows them. */
export const WireError = {
  /** Frame shorter than the 12-byte header. */
  SHORT_FRAME: 1,
  /** Frame longer than 4096 bytes. */
  TOO_BIG: 2,
  /** Header length field differs from the frame's length. */
  LENGTH_MISMATCH: 3,
  /** Command number not in the protocol. */
  UNKNOWN_CMD: 4,
  /** Body length wrong for the command, or a field out of range. */
  BAD_BODY: 5,
  /** Chat or error text not valid UTF-8 or longer than allowed. */
  BAD_TEXT: 6,
  /** Header seconds beyond 2^53. */
  BAD_TIME: 7,
  /** A text (non-binary) WebSocket frame. */
  TEXT_FRAME: 8,
  /** A command other than login before login. */
  NOT_LOGGED_IN: 20,
  /** A second login on one connection. */
  ALREADY_LOGGED_IN: 21,
  /** userId in the message is not the connection's user. */
  WRONG_USER: 22,
  /** A command only the server may send. */
  UNEXPECTED_CMD: 23,
  /** The same user logged in on a newer connection: this one is closed. */
  REPLACED: 24,
  /** Internal failure while handling the message. */
  INTERNAL: 99,
} as const;
export type WireErrorCode = (typeof WireError)[keyof typeof WireError];

const wireNames = new Map<number, string>(Object.entries(WireError).map(([k, v]) => [v, k]));

/** Name of a wire error code, e.g. `TOO_BIG`, or `E<n>` when unknown. */
export function wireErrorName(code: number): string {
  return wireNames.get(code) ?? `E${code}`;
}

/** WebSocket close code sent after an error frame: 1007 for bytes that do not parse, 1008 for policy. */
export function closeCodeFor(code: number): number {
  return code < 20 && code !== WireError.TOO_BIG ? 1007 : 1008;
}

/** Codes carried in HTTP error bodies: `{statusCode, code, error, message}`. */
export const HttpError = {
  BAD_REQUEST: 'HB_BAD_REQUEST',
  UNAUTHORIZED: 'HB_UNAUTHORIZED',
  NOT_FOUND: 'HB_NOT_FOUND',
  CONFLICT: 'HB_CONFLICT',
  UNAVAILABLE: 'HB_UNAVAILABLE',
  INTERNAL: 'HB_INTERNAL',
} as const;
export type HttpErrorCode = (typeof HttpError)[keyof typeof HttpError];

/** An error with a stable code and an HTTP status, thrown by route handlers. */
export class CodedError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: HttpErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CodedError';
  }
}

/** Invalid command-line, environment or config-file value: the CLI prints the message and exits 2. */
export class ConfigError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
