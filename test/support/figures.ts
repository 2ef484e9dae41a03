// What a test measured along the way (calls, failures, timings), for a closing note or a bench-like
// look at a run. Printed only with TENANT_POOLS_TEST_FIGURES=1: `npm test` prints jest's own output
// and real failures, nothing else.
export function figure(line: string): void {
  if (process.env.TENANT_POOLS_TEST_FIGURES === '1') process.stdout.write(`${line.replace(/\n+$/, '')}\n`)
}
