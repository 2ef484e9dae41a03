// Which statements run through query() may leave state in their session (session.ts), so that the
// connection is reset before anyone uses it again. A miss lets one caller's SET or temp table reach
// the next caller; a false alarm costs only a reset.
import {
  maybeChangesSession,
  PROXY_SAFE_RESET_SQL,
  resetStatements,
  searchPathSelects,
} from '../../lib/pool/session'

describe('Function: maybeChangesSession', () => {
  it.each([
    'SET search_path = x',
    '  set statement_timeout = 0',
    '\tRESET ALL',
    'discard all',
    'LISTEN ch',
    'unlisten *',
    'PREPARE p AS SELECT 1',
    'DEALLOCATE p',
    'DECLARE c CURSOR WITH HOLD FOR SELECT 1',
    'LOAD $$auto_explain$$',
    'SELECT 1; SET role x',
    'SELECT 1;set role x',
    "SELECT set_config('search_path', 'x', false)",
    'SELECT set_config  (1)',
    'SELECT pg_advisory_lock(1)',
    'SELECT pg_try_advisory_lock(1)',
    'CREATE TEMP TABLE t (x int)',
    'create temporary table t (x int)',
    'CREATE TEMPORARY VIEW v AS SELECT 1',
    'create temp   sequence s',
    'SELECT 1 INTO TEMP t',
    'select * into  temp t from x',
    '/* retry */ SET search_path = x',
    '-- why\nSET x = 1',
  ])('says %j may change its session', (text) => {
    expect(maybeChangesSession(text)).toBe(true)
    // The answer is remembered; asked again, it is the same.
    expect(maybeChangesSession(text)).toBe(true)
  })

  it.each([
    'SELECT 1',
    'SELECT offset, settings FROM t',
    'UPDATE t SET x = 1',
    'SELECT reset_at FROM t',
    'SELECT * FROM listeners',
    'SELECT * FROM prepared_orders',
    'SELECT declared FROM t',
    'SELECT loaded FROM t',
    'SELECT my_set_config(1)',
    'SELECT pg_advisory_unlock(1)',
    'SELECT pg_advisory_xact_lock(1)',
    'SELECT tempo FROM t',
    'SELECT * FROM temp_tables',
    'SELECT temperature FROM t',
    'INSERT INTO t SELECT 1',
    // Words that only begin with a keyword are not the keyword (a classifier of text, not of SQL).
    'settings',
    'SELECT 1; loaded',
  ])('says %j leaves its session as it was', (text) => {
    expect(maybeChangesSession(text)).toBe(false)
    expect(maybeChangesSession(text)).toBe(false)
  })
})

describe('Function: resetStatements', () => {
  const binding = { schema: 'tenant_a', applicationName: "x'y" }

  it('clears everything DISCARD ALL would, then binds again, the temporary schema searched last', () => {
    expect(resetStatements(binding, false)).toEqual([
      'SET SESSION AUTHORIZATION DEFAULT',
      'RESET ALL',
      'CLOSE ALL',
      'DEALLOCATE ALL',
      'UNLISTEN *',
      'SELECT pg_advisory_unlock_all()',
      'DISCARD SEQUENCES',
      'DISCARD TEMP',
      'SET search_path TO "tenant_a", pg_temp',
      "SET application_name TO 'x''y'",
    ])
    expect(PROXY_SAFE_RESET_SQL).toBe('DISCARD ALL')
  })

  it('gives writes back to a writing binding on a connection that started read-only', () => {
    expect(resetStatements(binding, true).at(-1)).toBe('SET default_transaction_read_only TO off')
    expect(resetStatements({ ...binding, readOnly: true }, true).at(-1)).toBe(
      'SET default_transaction_read_only TO on',
    )
  })
})

describe('Function: searchPathSelects', () => {
  it.each([
    ['tenant_a, pg_temp', 'tenant_a'],
    ['"tenant_a",pg_temp', 'tenant_a'],
    [' "tenant_a" ,  PG_TEMP ', 'tenant_a'],
    ['"Odd ""name""", pg_temp', 'Odd "name"'],
    ['TENANT_A, pg_temp', 'tenant_a'],
  ])('says %j selects %j, then pg_temp', (reported, schema) => {
    expect(searchPathSelects(reported, schema)).toBe(true)
  })

  it.each([
    [undefined, 'tenant_a'],
    ['tenant_a', 'tenant_a'],
    ['tenant_b, pg_temp', 'tenant_a'],
    ['pg_temp, tenant_a', 'tenant_a'],
    ['tenant_a, pg_temp, tenant_b', 'tenant_a'],
    ['"$user", public', 'tenant_a'],
    ['"TENANT_A", pg_temp', 'tenant_a'],
    ['"tenant_a, pg_temp', 'tenant_a'],
    ['tenant_a,, pg_temp', 'tenant_a'],
    ['tenant_a pg_temp', 'tenant_a'],
    // The server's whitespace and case folding are ASCII only: a no-break space is part of a name,
    // and a Kelvin sign does not fold to k.
    ['tenant_a\u00a0, pg_temp', 'tenant_a'],
    ['TENANT_\u212a, pg_temp', 'tenant_k'],
    ['', 'tenant_a'],
  ])('says %j does not select only %j', (reported, schema) => {
    expect(searchPathSelects(reported, schema)).toBe(false)
  })
})
