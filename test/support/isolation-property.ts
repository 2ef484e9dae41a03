// The isolation property, shared by its jest test (test/registry/checkout.isolation-property.test.ts) and
// npm run bench:isolation: hostile statements of every kind that changes a session, in many
// spellings and hiding places, interleaved across three tenants on one or two shared connections,
// through query(), withClient() and the pg.Pool handle. After each of them, whoever calls next must
// read only its own schema's rows, write only into its own schema, and see nothing another tenant
// left in the session. Attacks may fail; a probe must not, but for "no such relation" and "lastval
// not yet defined".
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { Client, type ClientBase, type QueryConfig, type QueryResult, type QueryResultRow } from 'pg'
import { TenantPools } from '../../lib'

const TENANTS = 3
// Every sequence a tenant owns starts in its own range, so a lastval() tells whose it was.
const RANGE = 1_000_000_000
const LOCK_BASE = 1000

/**
 * What a tenant's caller runs through: the registry's query(), withClient(), or the pg.Pool handle:
 * its query() with text, or with a config as Drizzle sends, and its connect().
 */
type Api = 'query' | 'withClient' | 'pgPool.query' | 'pgPool.config' | 'pgPool.connect'
const APIS: Api[] = ['query', 'withClient', 'pgPool.query', 'pgPool.config', 'pgPool.connect']

interface World {
  ids: string[]
  schemas: string[]
  roles: string[]
  sessionUser: string
}

/** One statement, with the values it is sent with (the extended protocol) if any. */
interface Statement {
  text: string
  values?: unknown[]
}

/** A caller's action: an attack (statements whose failures are its own) or a probe of what it sees. */
type Action =
  | { kind: 'attack'; tenant: number; api: Api; scope: Variant; script: Statement[]; label: string }
  | { kind: 'probe'; tenant: number; api: Api; scope: Variant; order: number[] }

/**
 * Which of the tenant's scopes a caller uses: the tenant's own, one of its apps (the same schema,
 * another scope), or a read-only one (on the writer: its sessions refuse writes).
 */
type Variant = 'tenant' | 'app' | 'readOnly'
const scopeOptions = (v: Variant) =>
  v === 'app' ? { app: 'mobile' } : v === 'readOnly' ? { readOnly: true } : {}

// ---- spellings --------------------------------------------------------------------------------

const cased = (word: string) =>
  fc.constantFrom(
    word.toLowerCase(),
    word.toUpperCase(),
    word.charAt(0).toUpperCase() + word.slice(1).toLowerCase(),
  )
// Anything the lexer takes as whitespace between two tokens.
const gap = fc.constantFrom(' ', '\t', '\n  ', ' /* x; */ ', ' -- c;\n', '/**/', ' /* /* nested */ */ ')
const lead = fc.constantFrom('', ' ', '\n', '/* retry */ ', '-- note\n', '  /**/', '/* /* nested */ */ ')
// A schema name as an identifier: bare, upper-cased (folds to lower), quoted, or U&-escaped.
const uescaped = (name: string) =>
  `U&"${[...name].map((ch, i) => (i % 2 === 0 ? `\\${ch.charCodeAt(0).toString(16).padStart(4, '0')}` : ch)).join('')}"`
const identifier = (name: string) => fc.constantFrom(name, name.toUpperCase(), `"${name}"`, uescaped(name))
// The schema as the text of a search_path value (set_config, pg_settings).
const pathLiteral = (name: string) =>
  fc.constantFrom(name, `"${name}"`, `${name}, pg_temp`, `pg_temp, ${name}`, `"$user", ${name}`)
const setConfig = fc.constantFrom(
  'set_config',
  '"set_config"',
  'pg_catalog.set_config',
  'PG_CATALOG."set_config"',
  'U&"\\0073et_config"',
)

// ---- the attacks ------------------------------------------------------------------------------

type Maker = (w: World, attacker: number, victim: number) => fc.Arbitrary<Statement[]>

const one = (text: string, values?: unknown[]): Statement[] => [values ? { text, values } : { text }]
const many = (...texts: string[]): Statement[] => texts.map((text) => ({ text }))

// search_path moved to another tenant's schema, however spelled, wherever hidden.
const searchPathMoves: Maker[] = [
  (w, _a, v) =>
    fc
      .tuple(
        lead,
        cased('set'),
        gap,
        fc.constantFrom('', 'SESSION '),
        cased('search_path'),
        gap,
        fc.constantFrom('TO', '=', 'to'),
        gap,
        identifier(w.schemas[v] as string),
      )
      .map(([l, set, g1, session, sp, g2, to, g3, id]) =>
        one(`${l}${set}${g1}${session}${sp}${g2}${to}${g3}${id}`),
      ),
  (w, _a, v) =>
    fc
      .tuple(lead, cased('select'), gap, setConfig, pathLiteral(w.schemas[v] as string), fc.boolean())
      .map(([l, sel, g, fn, path, withValues]) =>
        withValues
          ? one(`${l}${sel}${g}${fn}('search_path', $1, false)`, [path])
          : one(`${l}${sel}${g}${fn}('search_path', '${path}', false)`),
      ),
  (w, _a, v) =>
    pathLiteral(w.schemas[v] as string).map((path) =>
      one(`UPDATE pg_settings SET setting = '${path}' WHERE name = 'search_path'`),
    ),
  (w, _a, v) =>
    fc
      .tuple(pathLiteral(w.schemas[v] as string), identifier(w.schemas[v] as string))
      .chain(([path, id]) =>
        fc.constantFrom(
          one(`DO $$BEGIN PERFORM set_config('search_path', '${path}', false); END$$`),
          one(`DO $$BEGIN EXECUTE 'SET search_path TO ${id.replace(/'/g, "''")}'; END$$`),
          one(`do $body$ begin execute 'reset all'; end $body$`),
          one(`DO LANGUAGE plpgsql $$BEGIN RESET search_path; END$$`),
        ),
      ),
  // Back to the startup packet's value: the scope the connection was opened for, maybe another.
  () => fc.constantFrom(one('RESET search_path'), one('reset   ALL'), one('/**/RESET/**/search_path')),
  // A second statement behind a comment or a literal that looks like one.
  (w, _a, v) =>
    identifier(w.schemas[v] as string).chain((id) =>
      fc.constantFrom(
        one(`SELECT '--';--\nRESET search_path`),
        one(`SELECT '/*'; SET search_path TO ${id} --*/`),
        one(`SELECT $$;$$; set search_path = ${id}`),
        one(`SELECT 1 /* ; */; SELECT set_config('search_path', '${w.schemas[v]}', false)`),
      ),
    ),
  // Function bodies: SQL and PL/pgSQL, SECURITY DEFINER with and without a SET clause of its own.
  (w, a, v) =>
    fc
      .tuple(
        fc.constantFrom('sql', 'plpgsql'),
        fc.constantFrom('', 'SECURITY DEFINER', `SECURITY DEFINER SET search_path = ${w.schemas[a]}`),
        fc.boolean(),
      )
      .map(([language, security, together]) => {
        const body =
          language === 'sql'
            ? `SELECT set_config('search_path', '${w.schemas[v]}', false)`
            : `BEGIN RETURN set_config('search_path', '${w.schemas[v]}', false); END`
        const create = `CREATE OR REPLACE FUNCTION pg_temp.move_${a}() RETURNS text LANGUAGE ${language} ${security} AS $f$ ${body} $f$`
        const call = `SELECT pg_temp.move_${a}()`
        return together ? one(`${create}; ${call}`) : many(create, call)
      }),
  // Procedures and DO blocks that commit or roll back: after moving the search_path, or before a
  // write of their own, which a rollback that undid the binding would send to the schema the
  // session had before (another tenant's). Never both: a caller's write after its own move is its
  // own doing, as a schema-qualified name would be.
  (w, a, v) =>
    fc
      .tuple(fc.constantFrom('COMMIT', 'ROLLBACK'), fc.boolean(), fc.boolean(), lead)
      .map(([end, move, withValues, l]) => {
        const own = w.schemas[a] as string
        const body = move
          ? `PERFORM set_config('search_path', '${w.schemas[v]}', false); ${end};`
          : `${end}; INSERT INTO orders (tenant) VALUES ('${w.ids[a]}');`
        const create = `CREATE OR REPLACE PROCEDURE ${own}.hop(n int) LANGUAGE plpgsql AS $p$ BEGIN ${body} END $p$`
        return [
          { text: create },
          withValues ? { text: `${l}CALL ${own}.hop($1)`, values: [1] } : { text: `${l}CALL ${own}.hop(1)` },
        ]
      }),
  (w, a, v) =>
    fc
      .tuple(fc.constantFrom('COMMIT', 'ROLLBACK'), fc.boolean(), lead)
      .map(([end, move, l]) =>
        one(
          move
            ? `${l}DO $$BEGIN PERFORM set_config('search_path', '${w.schemas[v]}', false); ${end}; END$$`
            : `${l}DO $$BEGIN ${end}; INSERT INTO orders (tenant) VALUES ('${w.ids[a]}'); END$$`,
        ),
      ),
]

// Relations in the session's temporary schema, with the attacker's rows, made without saying TEMP.
const TEMP_NAMES = ['loot', 'whoami', 'orders']
const tempRelations: Maker[] = [
  (w, a) =>
    fc.tuple(fc.constantFrom(...TEMP_NAMES), fc.integer({ min: 0, max: 6 })).map(([name, how]) => {
      const row = `'${w.ids[a]}'::text AS tenant`
      switch (how) {
        case 0:
          return one(`CREATE TEMP TABLE ${name} AS SELECT ${row}`)
        case 1:
          return one(`CREATE TABLE pg_temp.${name} AS SELECT ${row}`)
        case 2:
          return one(`SELECT ${row} INTO pg_temp.${name}`)
        case 3:
          return one(`CREATE VIEW pg_temp.${name} AS SELECT ${row}`)
        case 4:
          return many(
            `CREATE TABLE "pg_temp".${name} (tenant text)`,
            `INSERT INTO pg_temp.${name} VALUES ('${w.ids[a]}')`,
          )
        case 5:
          return one(`DO $$BEGIN CREATE TEMP TABLE ${name} AS SELECT ${row}; END$$`)
        default:
          return one(
            `CREATE OR REPLACE FUNCTION pg_temp.mk_${a}() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN EXECUTE 'CREATE TABLE PG_TEMP.${name} AS SELECT ''${w.ids[a]}''::text AS tenant'; END $f$; SELECT pg_temp.mk_${a}()`,
          )
      }
    }),
  (_w, a) =>
    fc.constant(many(`CREATE TEMP SEQUENCE loot_seq START ${a * RANGE + 7}`, "SELECT nextval('loot_seq')")),
]

// Everything else a session keeps: prepared statements, cursors, sequence values, locks, LISTEN, roles.
const otherState: Maker[] = [
  (_w, a) =>
    fc
      .integer({ min: 0, max: 99 })
      .chain((n) =>
        fc.constantFrom(
          one(`PREPARE p_${a}_${n} AS SELECT 1`),
          one(`DO $$BEGIN EXECUTE 'PREPARE p_${a}_${n} AS SELECT 2'; END$$`),
          one(`DECLARE c_${a}_${n} CURSOR WITH HOLD FOR SELECT 1`),
          one(`SELECT pg_try_advisory_lock(${LOCK_BASE + a})`),
          one(`DO $$BEGIN PERFORM pg_try_advisory_lock(${LOCK_BASE + a}); END$$`),
          one(`LISTEN ch_${a}`),
          one(`DO $$BEGIN EXECUTE 'LISTEN ch_${a}'; END$$`),
          one(`SELECT nextval('seq')`),
          one(`SELECT nextval($1::regclass)`, ['seq']),
        ),
      ),
  (w, a) =>
    fc.constantFrom(
      one(`SET ROLE ${w.roles[a]}`),
      one(`SET SESSION AUTHORIZATION ${w.roles[a]}`),
      one(`SELECT set_config('role', '${w.roles[a]}', false)`),
      one(`DO $$BEGIN EXECUTE 'SET ROLE ${w.roles[a]}'; END$$`),
    ),
  // A setting of the attacker's own (any role may set a custom, dotted one), however set.
  (_w, a) =>
    fc.constantFrom(
      one(`SET iso.owner = '${a}'`),
      one(`SELECT set_config('iso.owner', '${a}', false)`),
      one(`DO $$BEGIN PERFORM set_config('iso.owner', '${a}', false); END$$`),
      one(`UPDATE pg_settings SET setting = '${a}' WHERE name = 'application_name'`),
    ),
  // An open transaction left behind: the connection must not come back with it.
  () => fc.constantFrom(one('BEGIN'), one('BEGIN; SELECT 1'), one('START TRANSACTION READ WRITE')),
]

const MAKERS = [...searchPathMoves, ...tempRelations, ...otherState]

// ---- the probe --------------------------------------------------------------------------------

// `may`: the SQLSTATEs a probe may fail with. No such relation, no lastval yet, and "permission
// denied" on a relation of the caller's own session after its own SET ROLE (a foreign role is
// caught by the session probe, which never fails so).
const OWN_ROLE = '42501'
const PROBES: Array<{
  name: string
  text: string
  values?: (w: World, t: number) => unknown[]
  may?: string[]
}> = [
  { name: 'whoami', text: 'SELECT tenant FROM whoami', may: [OWN_ROLE] },
  { name: 'orders', text: 'SELECT DISTINCT tenant FROM orders', may: [OWN_ROLE] },
  { name: 'loot', text: 'SELECT tenant FROM loot', may: ['42P01', OWN_ROLE] },
  { name: 'lastval', text: 'SELECT lastval()::text AS value', may: ['55000'] },
  {
    name: 'write',
    text: 'INSERT INTO orders (tenant) VALUES ($1) RETURNING (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tableoid) AS schema',
    values: (w, t) => [w.ids[t]],
  },
  {
    name: 'session',
    text: `SELECT current_user::text AS usr,
        (SELECT coalesce(array_agg(name::text), '{}') FROM pg_prepared_statements) AS prepared,
        (SELECT coalesce(array_agg(name::text), '{}') FROM pg_cursors) AS cursors,
        (SELECT coalesce(array_agg(c::text), '{}') FROM pg_listening_channels() c) AS channels,
        (SELECT coalesce(array_agg(objid::int), '{}') FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks,
        current_setting('iso.owner', true) AS owner,
        current_setting('application_name') AS app`,
  },
]

/** What a probe found that is not the caller's: empty when isolation held. */
function violations(w: World, t: number, name: string, rows: QueryResultRow[]): string[] {
  const own = w.ids[t] as string
  const found: string[] = []
  const bad = (what: string) => found.push(`${name}: ${what}`)
  for (const row of rows) {
    if (name === 'whoami' || name === 'orders' || name === 'loot') {
      if (row.tenant !== own) bad(`read a row of ${row.tenant}`)
    } else if (name === 'lastval') {
      const owner = Math.floor(Number(row.value) / RANGE)
      if (owner !== t) bad(`lastval ${row.value} belongs to tenant ${owner}`)
    } else if (name === 'write') {
      if (row.schema !== w.schemas[t]) bad(`the row landed in ${row.schema}`)
    } else if (name === 'session') {
      if (row.usr !== w.sessionUser && row.usr !== w.roles[t]) bad(`runs as ${row.usr}`)
      for (const p of row.prepared as string[]) if (!p.startsWith(`p_${t}_`)) bad(`prepared statement ${p}`)
      // The unnamed portal is the probe's own statement, in the extended protocol.
      for (const c of row.cursors as string[]) if (c !== '' && !c.startsWith(`c_${t}_`)) bad(`cursor ${c}`)
      for (const c of row.channels as string[]) if (c !== `ch_${t}`) bad(`listens on ${c}`)
      for (const l of row.locks as number[]) if (l !== LOCK_BASE + t) bad(`holds advisory lock ${l}`)
      if (row.owner && row.owner !== String(t)) bad(`has tenant ${row.owner}'s setting`)
      if (/^\d+$/.test(row.app) && row.app !== String(t)) bad(`has tenant ${row.app}'s application_name`)
    }
  }
  if (name === 'write' && rows.length !== 1) bad(`${rows.length} rows written`)
  return found
}

// ---- running it -------------------------------------------------------------------------------

const sqlState = (err: unknown): string | undefined =>
  typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'
    ? (err as { code: string }).code
    : undefined

/** Runs `statements` through `api` for `tenant`; `each` sees every statement's outcome. */
async function through(
  pools: TenantPools,
  w: World,
  tenant: number,
  api: Api,
  scope: Variant,
  statements: Statement[],
  each: (i: number, outcome: { rows?: QueryResultRow[]; err?: unknown }) => void,
): Promise<void> {
  const id = w.ids[tenant] as string
  const run = async (exec: (s: Statement) => Promise<QueryResult | QueryResult[]>) => {
    for (let i = 0; i < statements.length; i++) {
      try {
        const result = await exec(statements[i] as Statement)
        each(i, { rows: Array.isArray(result) ? result.flatMap((r) => r.rows) : result.rows })
      } catch (err) {
        each(i, { err })
      }
    }
  }
  const onClient = (client: ClientBase) => run((s) => client.query(s.text, s.values))
  const options = scopeOptions(scope)
  if (api === 'query') return run((s) => pools.query(id, s.text, s.values, options))
  if (api === 'withClient') return pools.withClient(id, onClient, options)
  const pool = pools.forTenant(id, options).asPgPool()
  if (api === 'pgPool.query') return run((s) => pool.query(s.text, s.values))
  if (api === 'pgPool.config')
    return run((s) => pool.query({ text: s.text, values: s.values } as QueryConfig))
  const client = await pool.connect()
  try {
    await onClient(client)
  } finally {
    client.release()
  }
}

/** How the attacks fared: one that always fails tests nothing. */
export interface AttackTally {
  succeeded: number
  failed: number
  /** Statements that failed, by SQLSTATE. */
  failures: Record<string, number>
}

async function perform(pools: TenantPools, w: World, action: Action, tally: AttackTally): Promise<string[]> {
  if (action.kind === 'attack') {
    await through(pools, w, action.tenant, action.api, action.scope, action.script, (_, { err }) => {
      if (err === undefined) tally.succeeded++
      else {
        tally.failed++
        const code = sqlState(err) ?? 'none'
        tally.failures[code] = (tally.failures[code] ?? 0) + 1
      }
    })
    return []
  }
  const found: string[] = []
  const t = action.tenant
  // In a random order: whichever comes first is the one that meets a reset riding with it.
  const probes = action.order.map((i) => PROBES[i] as (typeof PROBES)[number])
  const statements = probes.map((p) => ({ text: p.text, values: p.values?.(w, t) }))
  const readOnly = action.scope === 'readOnly'
  await through(pools, w, t, action.api, action.scope, statements, (i, { rows, err }) => {
    const probe = probes[i] as (typeof PROBES)[number]
    // A read-only scope's write must be refused, as read-only (25006), and nothing else.
    if (readOnly && probe.name === 'write') {
      if (err === undefined) found.push('write: a read-only scope wrote')
      else if (sqlState(err) !== '25006')
        found.push(`write: failed with ${sqlState(err) ?? ''} ${(err as Error).message}`)
      return
    }
    if (err !== undefined) {
      if (!probe.may?.includes(sqlState(err) ?? '')) {
        found.push(`${probe.name}: failed with ${sqlState(err) ?? ''} ${(err as Error).message}`)
      }
      return
    }
    found.push(...violations(w, t, probe.name, rows ?? []))
  })
  return found.map((f) => `tenant ${t} via ${action.api}: ${f}`)
}

const actionOf = (w: World): fc.Arbitrary<Action> =>
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc
        .record({
          tenant: fc.nat(TENANTS - 1),
          api: fc.constantFrom(...APIS),
          scope: fc.constantFrom<Variant>('tenant', 'tenant', 'app', 'readOnly'),
          order: fc.shuffledSubarray(
            PROBES.map((_, i) => i),
            { minLength: PROBES.length },
          ),
        })
        .map((p) => ({ kind: 'probe' as const, ...p })),
    },
    {
      weight: 4,
      arbitrary: fc
        .record({
          tenant: fc.nat(TENANTS - 1),
          victim: fc.nat(TENANTS - 1),
          api: fc.constantFrom(...APIS),
          scope: fc.constantFrom<Variant>('tenant', 'tenant', 'app'),
          maker: fc.nat(MAKERS.length - 1),
        })
        .chain(({ tenant, victim, api, scope, maker }) =>
          (MAKERS[maker] as Maker)(w, tenant, victim).map((script) => ({
            kind: 'attack' as const,
            tenant,
            api,
            scope,
            script,
            label: `maker ${maker}`,
          })),
        ),
    },
  )

/** Three tenant schemas, each with its own role, rows and sequences; dropped by the returned function. */
export async function makeWorld(url: string): Promise<{ world: World; drop: () => Promise<void> }> {
  const tag = randomBytes(3).toString('hex')
  const ids = Array.from({ length: TENANTS }, (_, i) => `iso${tag}_${i}`)
  const schemas = ids.map((id) => `tenant_${id}`)
  const roles = ids.map((id) => `role_${id}`)
  const admin = new Client({ connectionString: url })
  await admin.connect()
  try {
    const sessionUser = (await admin.query<{ u: string }>('SELECT session_user::text AS u')).rows[0]
      ?.u as string
    for (let t = 0; t < TENANTS; t++) {
      const [s, r, id] = [schemas[t], roles[t], ids[t]]
      await admin.query(`CREATE SCHEMA ${s}`)
      await admin.query(`CREATE TABLE ${s}.whoami (tenant text NOT NULL)`)
      await admin.query(`INSERT INTO ${s}.whoami VALUES ('${id}')`)
      await admin.query(
        `CREATE TABLE ${s}.orders (id bigint GENERATED BY DEFAULT AS IDENTITY (START ${t * RANGE + 1}) PRIMARY KEY, tenant text NOT NULL)`,
      )
      await admin.query(`CREATE SEQUENCE ${s}.seq START ${t * RANGE + 1}`)
      await admin.query(`CREATE ROLE ${r}`)
      await admin.query(`GRANT ${r} TO ${sessionUser}`)
      await admin.query(`GRANT USAGE, CREATE ON SCHEMA ${s} TO ${r}`)
      await admin.query(`GRANT ALL ON ALL TABLES IN SCHEMA ${s} TO ${r}`)
      await admin.query(`GRANT ALL ON ALL SEQUENCES IN SCHEMA ${s} TO ${r}`)
    }
    return {
      world: { ids, schemas, roles, sessionUser },
      drop: async () => {
        const c = new Client({ connectionString: url })
        await c.connect()
        try {
          for (let t = 0; t < TENANTS; t++) {
            await c.query(`DROP SCHEMA ${schemas[t]} CASCADE`)
            await c.query(`DROP OWNED BY ${roles[t]}`)
            await c.query(`DROP ROLE ${roles[t]}`)
          }
        } finally {
          await c.end()
        }
      },
    }
  } finally {
    await admin.end()
  }
}

export interface IsolationRun {
  url: string
  /** Shared connections: the environment's whole budget. */
  connections: number
  numRuns: number
  seed?: number
  /** A registry of one's own (a broken one, to see the property fail); else a fresh one. */
  pools?: (url: string, connections: number) => TenantPools
}

/**
 * Checks the property: throws (fast-check's report, with the shrunk counterexample) on the first
 * run where a probe saw anything not its own. Returns the number of runs and of actions done.
 */
export async function checkIsolation(
  run: IsolationRun,
): Promise<{ runs: number; actions: number; attacks: AttackTally }> {
  const { world, drop } = await makeWorld(run.url)
  const pools =
    run.pools?.(run.url, run.connections) ??
    new TenantPools({
      connectionString: run.url,
      budget: run.connections,
      maxPerPool: run.connections,
      applicationNamePrefix: 'isolation',
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    })
  let actions = 0
  let runs = 0
  const attacks: AttackTally = { succeeded: 0, failed: 0, failures: {} }
  try {
    // Steps of one to `connections` + 1 actions run at once: with two connections two callers
    // interleave, and one more waits for a connection another caller gives back.
    const step = fc.array(actionOf(world), { minLength: 1, maxLength: run.connections + 1 })
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 2, maxLength: 8 }), async (steps) => {
        runs++
        const found: string[] = []
        for (const group of steps) {
          actions += group.length
          for (const f of await Promise.all(group.map((a) => perform(pools, world, a, attacks))))
            found.push(...f)
        }
        if (found.length > 0) throw new Error(`isolation broken:\n${found.join('\n')}`)
      }),
      { numRuns: run.numRuns, seed: run.seed, endOnFailure: true },
    )
  } finally {
    await pools.end()
    await drop()
  }
  return { runs, actions, attacks }
}
