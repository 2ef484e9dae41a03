// A line on stderr as each phase of a benchmark starts: a run prints its table only at the end,
// after a minute or more of silence. stderr, so that a redirected table stays clean.
const started = Date.now()

export const progress = (message: string): void => {
  process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1)} s] ${message}\n`)
}
