// Types of the untyped `ntp-client` package (only what common/clock.ts uses).
declare module 'ntp-client' {
  export let ntpReplyTimeout: number;
  export function getNetworkTime(server: string, port: number, callback: (err: unknown, date: Date | null) => void): void;
  const ntp: { ntpReplyTimeout: number; getNetworkTime: typeof getNetworkTime };
  export default ntp;
}
