// Files a reader may open at any moment (charts, report, run.json) are written to NAME.tmp and
// renamed over NAME: a reader sees the old file or the new one, never half of one.
import { renameSync, writeFileSync } from 'node:fs';

export function writeAtomic(path: string, data: string | Uint8Array): void {
  writeFileSync(path + '.tmp', data);
  renameSync(path + '.tmp', path);
}
