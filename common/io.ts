// Where a command writes: machine-readable JSON lines to stdout, progress for people to stderr.
export interface Io {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** How to start this same CLI again (node and script), for commands that spawn helpers. */
  self?: readonly string[];
}
