// Which statements may ride behind a rebind in one round trip (bound-query.ts). A statement that
// must not share the SETs' implicit transaction, or that holds several statements, must be refused,
// also when a comment stands before it; everything else is combined.
import { combinable } from '../../lib/pool/bound-query'

describe('Function: combinable', () => {
  it.each([
    ['SELECT 1', undefined],
    ['SELECT $1::int', [1]],
    ['select begin_at, end_at from t', []],
    ['SELECT 1 /* begin */', undefined],
    ['INSERT INTO copy_log VALUES (1)', undefined],
    ['endpoint', undefined],
    ['SELECT id FROM jobs WHERE start > now() AND commit IS NULL', undefined],
  ])('combines %j (values %j)', (text, values) => {
    expect(combinable(text, values)).toBe(true)
  })

  it.each([
    'BEGIN',
    '  begin',
    '\tVACUUM t',
    '\nanalyze t',
    'start transaction',
    'COMMIT',
    'end',
    'rollback',
    'abort',
    'savepoint s',
    'release s',
    'PREPARE TRANSACTION $$x$$',
    'create database d',
    'DROP   DATABASE d',
    'alter system set x = 1',
    'create tablespace t location $$/x$$',
    'drop tablespace t',
    'reindex table t',
    'cluster t',
    'CREATE INDEX CONCURRENTLY i ON t (x)',
    'create unique index concurrently i on t (x)',
    'drop index concurrently i',
    'refresh materialized view concurrently v',
    'COPY t FROM STDIN',
    // A procedure or DO block may commit or roll back, which a statement riding behind a reset may
    // not (in one simple query the server refuses it): they go in a round trip of their own.
    'CALL p(1)',
    '  call s.p($1)',
    'DO $$BEGIN NULL; END$$',
    '/* x */ do language plpgsql $$BEGIN COMMIT; END$$',
    'SELECT 1; SELECT 2',
    '/* a comment */ VACUUM t',
    '-- a comment\nbegin',
    // A comment is a space to the server: "begin work" with a comment inside, not "beginwork".
    '/* a */begin/* b */work',
    // Any run of whitespace between the words of a statement's name.
    'prepare  transaction $$x$$',
    'create\n  database d',
    'alter \t system set x = 1',
    'create  tablespace t location $$/x$$',
    'drop  tablespace t',
    'create  index concurrently i on t (x)',
    'create unique  index concurrently i on t (x)',
    'create index  concurrently i on t (x)',
    'drop  index concurrently i',
    'drop index  concurrently i',
    'refresh  materialized view concurrently v',
    'refresh materialized  view concurrently v',
    'refresh materialized view  concurrently v',
  ])('refuses %j', (text) => {
    expect(combinable(text, undefined)).toBe(false)
  })

  it('refuses values that are not an array, and a text that is not a string', () => {
    expect(combinable('SELECT $1', 'x')).toBe(false)
    expect(combinable('SELECT $1', { 0: 1 })).toBe(false)
    expect(combinable(42 as unknown as string, undefined)).toBe(false)
  })
})
