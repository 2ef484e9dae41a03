// What a function under test prints, kept for the test to assert on instead of reaching the run's
// output. Powertools' Logger and Metrics write through a Console of their own on process.stdout
// and process.stderr (not the global console jest wraps), so the streams themselves are captured.
// Scoped to one test: `restore()` in a finally, so a failure's own output still shows.

export interface CapturedOutput {
  /** Every line written to stdout or stderr since capture began. */
  readonly lines: string[]
  /** The lines that are JSON objects (Powertools' structured logs), parsed. */
  json(): Record<string, unknown>[]
  restore(): void
}

export function captureOutput(): CapturedOutput {
  const lines: string[] = []
  const keep = (chunk: string | Uint8Array) => {
    lines.push(
      ...String(chunk)
        .split('\n')
        .filter((l) => l !== ''),
    )
    return true
  }
  const spies = [
    jest.spyOn(process.stdout, 'write').mockImplementation(keep),
    jest.spyOn(process.stderr, 'write').mockImplementation(keep),
  ]
  return {
    lines,
    json: () => lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
    restore: () => {
      for (const spy of spies) spy.mockRestore()
    },
  }
}
