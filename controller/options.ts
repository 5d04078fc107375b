// Options of `hongbao controller` and `hongbao chart`.
import type { CommandSpec } from '../common/options.ts';

export interface ControllerOptions {
  port: number;
  host: string;
  stub: string | undefined;
  results: string;
  ntpServe: number | undefined;
  token: string | undefined;
  lead: number;
  lostAfter: number;
  chartEvery: number;
  note: string | undefined;
}

export interface ChartOptions {
  compare: string | undefined;
  out: string | undefined;
}

export const controllerCommand: CommandSpec = {
  name: 'controller',
  summary: 'Retargets the fleet QPS, records client and server per-second series, renders PNG charts, serves the live dashboard.',
  usage: 'hongbao controller [--port 8080] [--stub URL] [--results DIR] [--ntp-serve PORT]',
  options: [
    { flag: 'port', type: 'int', min: 0, max: 65535, default: 8080, help: 'HTTP port (0 picks a free one)' },
    { flag: 'host', type: 'string', default: '127.0.0.1', help: 'address to listen on (a non-loopback one needs a token)' },
    { flag: 'stub', type: 'url', protocols: ['http:', 'https:'], arg: 'URL', help: "the server stub's HTTP API, polled for /stats every second" },
    { flag: 'results', type: 'string', default: 'results', arg: 'DIR', help: 'folder of run outputs' },
    { flag: 'ntp-serve', type: 'int', min: 0, max: 65535, arg: 'PORT', help: 'answer SNTP on this UDP port (0 picks one; unset: off)' },
    { flag: 'token', type: 'string', sharedEnv: 'HONGBAO_TOKEN', help: 'bearer token for POST routes and for calls to agents' },
    { flag: 'lead', type: 'int', min: 1, max: 60, default: 2, help: 'seconds between POST /qps and the second the fleet switches' },
    { flag: 'lost-after', type: 'int', min: 2, max: 600, default: 5, help: 'seconds without a sample after which an agent is marked lost' },
    { flag: 'chart-every', type: 'int', min: 1, max: 3600, default: 10, help: 'seconds between chart and report.html renders during a run' },
    { flag: 'note', type: 'string', arg: 'TEXT', help: "a line about the run (what drives it, the server's build...), kept in run.json and shown in report.html" },
  ],
};

export const chartCommand: CommandSpec = {
  name: 'chart',
  summary:
    'Re-renders report.html, the PNG charts and summary.json of a run from its series.ndjson; with --compare, writes one report with both runs overlaid instead.',
  usage: 'hongbao chart RESULTS_DIR/RUN [--compare RESULTS_DIR/OTHER_RUN] [--out FILE]',
  options: [
    { flag: 'compare', type: 'string', arg: 'RUN_DIR', help: 'a second run folder: write one report with both runs (A = RUN, B = this) on every chart and their phase tables side by side' },
    { flag: 'out', type: 'string', arg: 'FILE', help: 'where --compare writes its report (default RUN/compare-OTHER_RUN.html)' },
  ],
};
