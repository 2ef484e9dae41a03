// A bench's size from its environment variable, checked: a typo fails the run at once.

/** The whole number (at least 1) in process.env[name], or `fallback` when it is unset or empty. */
export const count = (name: string, fallback: number): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number of at least 1`)
  return n
}
