// The browser script of the dashboard and report.html (controller/web/client.ts, bundled by
// build.mjs): embedded in dist/hongbao.cjs at build time; code run from source reads dist/charts.js.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

declare const __HONGBAO_CHARTS_JS__: string | undefined;

let script: string | undefined;

export function chartsScript(): string {
  if (script !== undefined) return script;
  if (typeof __HONGBAO_CHARTS_JS__ === 'string') return (script = __HONGBAO_CHARTS_JS__);
  const path = join(process.cwd(), 'dist', 'charts.js');
  try {
    return (script = readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`the charts' browser script ${path} is missing: run npm run build (${(err as Error).message})`);
  }
}
