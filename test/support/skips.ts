// Suites that need something this machine may lack (PgBouncer, PostgreSQL 15, network namespaces)
// skip as named tests, so the skip and its reason are in jest's own output: the summary counts it
// ("1 skipped") and --verbose names it. A console line would not do: jest drops a skipped file's.

/** Why PostgreSQL 15 tests are skipped (the global setup starts it when installed), else undefined. */
export const pg15Missing = (): string | undefined =>
  process.env.TEST_PG15_URL
    ? undefined
    : 'PostgreSQL 15 is not installed (/usr/lib/postgresql/15/bin): apt-get install -y postgresql-15 (.ci/run does, as root)'

/**
 * A server's label in a describe.each table: its name, or, when it is not there (no url), its name
 * with the reason its tests are skipped, which then shows in each skipped test's name.
 */
export const serverLabel = (name: string, url: string | undefined, missing: string | undefined): string =>
  url ? name : `${name} (SKIPPED: ${missing ?? 'not started'})`

/** PostgreSQL 15's label in a describe.each table of servers. */
export const pg15Label = (name = 'PostgreSQL 15'): string =>
  serverLabel(name, process.env.TEST_PG15_URL, pg15Missing())

/**
 * `describe`, or, where `reason` is set, one skipped test named for the reason in place of the
 * suite's tests (none of whose hooks run).
 */
export function describeUnless(reason: string | undefined): (name: string, fn: () => void) => void {
  if (reason === undefined) return describe
  return (name) =>
    describe(name, () => {
      // biome-ignore lint/suspicious/noSkippedTests: the skip is the point: it names what is missing.
      it.skip(`SKIPPED: ${reason}`, () => {})
    })
}
